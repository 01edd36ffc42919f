"""The paper record the gate to LIVE reads: trades and trading days of a bot's PAPER fills in the paper book (at a
sim venue), open incidents."""

from __future__ import annotations

from django.db.models.functions import TruncDate

from bots.hooks import PaperRecord
from controlplane.books import Book, venue_in_book
from execution.models import Fill, RiskIncident


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
