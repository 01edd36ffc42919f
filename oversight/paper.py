"""The paper record the gate to LIVE and the autonomy score read: trades and trading days of a bot's PAPER fills
in the paper book (at a sim venue), open incidents."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models.functions import TruncDate

from controlplane.books import Book, venue_in_book
from execution.models import Fill, RiskIncident


@dataclass(frozen=True)
class PaperRecord:
    trades: int
    days: int
    open_risk_incidents: int
    details: dict = field(default_factory=dict)


def paper_record(*, bot) -> PaperRecord:
    fills = Fill.objects.filter(venue_in_book(Book.PAPER), bot=bot, bot_stage="PAPER")
    trades = fills.values("order_id").distinct().count()
    days = fills.annotate(day=TruncDate("ts")).values("day").distinct().count()
    incidents = RiskIncident.objects.filter(bot=bot, status=RiskIncident.Status.OPEN).count()
    return PaperRecord(
        trades=trades,
        days=days,
        open_risk_incidents=incidents,
        details={"fills": fills.count(), "counted": "orders with a PAPER fill at a sim venue; UTC days"},
    )
