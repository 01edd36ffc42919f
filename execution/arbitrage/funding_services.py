"""State changes of funding positions (DESIGN.md invariant 6: each locks its row, checks the transition and writes
the audit event in the same transaction).

- :func:`record_funding_intent`: a funding scan's intent was created: an entry opens a position (OPENING), an exit
  moves its position to CLOSING.
- :func:`sync_funding_positions`: follows the intents: OPENING becomes OPEN when both entry legs filled (entry
  prices and fees from the fills) or CLOSED when the entry ended without filling; CLOSING becomes CLOSED when the
  exit filled (exit prices and fees), or OPEN again when the exit ended without filling (the next scan retries).
- :func:`book_funding_payments`: one ``FundingPayment`` per funding time while a position was open, from the
  venue's ``FundingRate`` of that time and the perpetual's mark then; idempotent per (position, funding time).
  Beat runs it for every tenant (``execution.book_funding``); a replay runs it as of its replayed time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.funding_models import FundingPayment, FundingPosition
from execution.marketdata.models import BasisQuote, FundingRate
from execution.models import Fill, Instrument, Order, TradeIntent

logger = logging.getLogger(__name__)

Status = FundingPosition.Status

TRANSITIONS: dict[str, set[str]] = {
    Status.OPENING: {Status.OPEN, Status.CLOSED},
    Status.OPEN: {Status.CLOSING},
    Status.CLOSING: {Status.CLOSED, Status.OPEN},
}


def _transition(position: FundingPosition, to: str, *, fields: dict, actor_name: str) -> None:
    if to not in TRANSITIONS.get(position.status, set()):
        raise ControlPlaneError(
            ErrorCode.ILLEGAL_TRANSITION,
            f"Funding position {position.pk} cannot go from {position.status} to {to}.",
            details={"current": position.status, "requested": to},
        )
    before = position.status
    position.status = to
    for name, value in fields.items():
        setattr(position, name, value)
    position.save(update_fields=["status", "updated_at", *fields])
    audit_record(
        action="funding_position.status",
        resource_type="funding_position",
        resource_id=position.pk,
        actor_name=actor_name,
        before={"status": before},
        after={"status": to, **{k: str(v) if v is not None else None for k, v in fields.items()}},
    )


def record_funding_intent(
    *,
    bot,
    book: str,
    kind: str,
    intent: TradeIntent,
    symbol: str,
    spot_venue: str,
    perp_venue: str,
    direction: str,
    quantity: Decimal,
    numbers: dict,
    position_id: int | None = None,
    run_ref: int | None = None,
    actor_name: str = "scanner",
) -> FundingPosition | None:
    """After a funding scan created ``intent``: ``kind`` open -> a new OPENING position; close -> its position
    CLOSING. A refused (REJECTED) entry opens nothing; a refused exit leaves the position OPEN."""
    if intent.status == TradeIntent.Status.REJECTED:
        return None
    with transaction.atomic():
        if kind == "open":
            existing = FundingPosition.objects.filter(open_intent=intent).first()
            if existing is not None:  # recorded already (the scan ran twice): the first position again
                return existing
            position = FundingPosition.objects.create(
                bot=bot,
                book=book,
                run_ref=run_ref,
                instrument=Instrument.objects.get(symbol=symbol),
                spot_venue=spot_venue,
                perp_venue=perp_venue,
                direction=direction,
                quantity=quantity,
                open_intent=intent,
                expected=numbers,
            )
            audit_record(
                action="funding_position.open",
                resource_type="funding_position",
                resource_id=position.pk,
                actor_name=actor_name,
                after={
                    "status": position.status,
                    "intent_id": intent.pk,
                    "direction": direction,
                    "quantity": str(quantity),
                    "symbol": symbol,
                },
            )
            return position
        position = FundingPosition.objects.select_for_update().get(pk=position_id, bot=bot)
        if position.close_intent_id == intent.pk:
            return position
        _transition(
            position,
            Status.CLOSING,
            fields={"close_intent": intent, "close_reason": numbers.get("close", "")},
            actor_name=actor_name,
        )
        return position


def _leg_fills(intent: TradeIntent) -> dict[int, list[Fill]]:
    """Fills of the intent's own legs (not flatten orders), by leg index (0 spot, 1 perpetual)."""
    by_leg: dict[int, list[Fill]] = {}
    fills = Fill.objects.filter(order__intent=intent, order__purpose=Order.Purpose.LEG).select_related("order__leg")
    for fill in fills.order_by("ts", "id"):
        by_leg.setdefault(fill.order.leg.leg_index, []).append(fill)
    return by_leg


def _average(fills: list[Fill]) -> Decimal:
    quantity = sum((f.quantity for f in fills), Decimal(0))
    return sum((f.price * f.quantity for f in fills), Decimal(0)) / quantity


def _fees(fills: list[Fill]) -> Decimal | None:
    """Sum of the fills' fees, or None when any is unknown (a venue that did not report it): unknown, not zero."""
    if any(f.fee is None for f in fills):
        return None
    return sum((f.fee for f in fills), Decimal(0))


def _filled_prices(intent: TradeIntent) -> tuple[Decimal, Decimal, Decimal | None, datetime] | None:
    by_leg = _leg_fills(intent)
    if not by_leg.get(0) or not by_leg.get(1):
        return None
    every = by_leg[0] + by_leg[1]
    return _average(by_leg[0]), _average(by_leg[1]), _fees(every), max(f.ts for f in every)


def sync_funding_positions(*, bot=None, actor_name: str = "scanner") -> list[tuple[int, str]]:
    """Move OPENING and CLOSING positions (of ``bot``, or all the tenant's) along their intents. Returns the
    (position id, new status) pairs that changed. Safe to run twice."""
    changed = []
    queryset = FundingPosition.objects.filter(status__in=(Status.OPENING, Status.CLOSING))
    if bot is not None:
        queryset = queryset.filter(bot=bot)
    for position_id in queryset.order_by("id").values_list("id", flat=True):
        with transaction.atomic():
            position = (
                FundingPosition.objects.select_for_update(of=("self",))
                .select_related("open_intent", "close_intent")
                .get(pk=position_id)
            )
            intent = position.open_intent if position.status == Status.OPENING else position.close_intent
            if intent.status not in TradeIntent.TERMINAL_STATUSES:
                continue
            filled = _filled_prices(intent) if intent.status == TradeIntent.Status.FILLED else None
            if position.status == Status.OPENING:
                if filled is not None:
                    spot, perp, fees, at = filled
                    fields = {"entry_spot_price": spot, "entry_perp_price": perp, "entry_fees": fees, "opened_at": at}
                    _transition(position, Status.OPEN, fields=fields, actor_name=actor_name)
                else:
                    fields = {"close_reason": f"entry_{intent.status.lower()}", "closed_at": timezone.now()}
                    _transition(position, Status.CLOSED, fields=fields, actor_name=actor_name)
            elif filled is not None:
                spot, perp, fees, at = filled
                fields = {"exit_spot_price": spot, "exit_perp_price": perp, "exit_fees": fees, "closed_at": at}
                _transition(position, Status.CLOSED, fields=fields, actor_name=actor_name)
            else:
                fields = {"close_intent": None, "close_reason": f"exit_{intent.status.lower()}"}
                _transition(position, Status.OPEN, fields=fields, actor_name=actor_name)
            changed.append((position.pk, position.status))
    return changed


@dataclass
class FundingBooking:
    booked: int = 0
    positions: int = 0
    unpriced: list[dict] = field(default_factory=list)  # funding times with no mark near them: not booked (yet)

    def as_dict(self) -> dict:
        return {"booked": self.booked, "positions": self.positions, "unpriced": self.unpriced}


def book_funding_payments(
    *, as_of: datetime | None = None, bot=None, run_ref: int | None = None, actor_name: str = "beat"
) -> FundingBooking:
    """Book every funding time that passed (``funding_at <= as_of``) while a position of the tenant in context (or
    of ``bot``) was open: ``opened_at < funding_at`` and, once closed, ``funding_at < closed_at``. Amount:
    ``side x rate x quantity x mark`` with the mark the latest basis quote at or before the funding time, no older
    than ``ARB_FUNDING_MARK_MAX_AGE_SECONDS`` (without one, the time is left unbooked and reported, never booked at
    a guessed price). Payments already booked are left alone (unique per position and funding time)."""
    as_of = as_of or timezone.now()
    result = FundingBooking()
    positions = FundingPosition.objects.filter(opened_at__isnull=False, opened_at__lt=as_of)
    if bot is not None:  # one bot's timeline: the live one, or the replay ``run_ref``'s
        positions = positions.filter(bot=bot, run_ref=run_ref)
    booked_times = {}
    for position_id, funding_at in FundingPayment.objects.filter(position__in=positions).values_list(
        "position_id", "funding_at"
    ):
        booked_times.setdefault(position_id, set()).add(funding_at)
    mark_age = timedelta(seconds=settings.ARB_FUNDING_MARK_MAX_AGE_SECONDS)
    for position in positions.order_by("id"):
        end = min(as_of, position.closed_at) if position.closed_at else as_of
        rates = FundingRate.objects.filter(
            instrument_id=position.instrument_id,
            venue=position.perp_venue,
            funding_at__gt=position.opened_at,
            funding_at__lte=as_of,
        ).order_by("funding_at")
        rows = []
        for rate in rates:
            if rate.funding_at > end or (position.closed_at and rate.funding_at >= position.closed_at):
                continue
            if rate.funding_at in booked_times.get(position.pk, set()):
                continue
            mark = (
                BasisQuote.objects.filter(
                    instrument_id=position.instrument_id,
                    venue=position.perp_venue,
                    received_at__lte=rate.funding_at,
                    received_at__gte=rate.funding_at - mark_age,
                )
                .order_by("-received_at")
                .values_list("mark", "received_at")
                .first()
            )
            if mark is None:
                result.unpriced.append({"position": position.pk, "funding_at": rate.funding_at.isoformat()})
                continue
            amount = (position.perp_sign * rate.rate * position.quantity * mark[0]).quantize(Decimal("0.000000001"))
            rows.append(
                FundingPayment(
                    tenant_id=position.tenant_id,
                    position=position,
                    funding_at=rate.funding_at,
                    rate=rate.rate,
                    mark=mark[0],
                    mark_at=mark[1],
                    quantity=position.quantity,
                    amount=amount,
                    trace_id=current_trace_id(),
                )
            )
        if not rows:
            continue
        with transaction.atomic():
            # Under the position's lock, drop what a concurrent run booked meanwhile: the count stays true.
            FundingPosition.objects.select_for_update().filter(pk=position.pk).values_list("id").get()
            already = set(FundingPayment.objects.filter(position=position).values_list("funding_at", flat=True))
            rows = [row for row in rows if row.funding_at not in already]
            if not rows:
                continue
            created = FundingPayment.objects.bulk_create(rows)
            audit_record(
                action="funding_position.payments",
                resource_type="funding_position",
                resource_id=position.pk,
                actor_name=actor_name,
                after={
                    "booked": [{"funding_at": r.funding_at.isoformat(), "amount": str(r.amount)} for r in rows],
                    "as_of": as_of.isoformat(),
                },
            )
        result.booked += len(created)
        result.positions += 1
    if result.unpriced:
        logger.warning("funding times without a mark were not booked", extra={"unpriced": result.unpriced[:20]})
    return result
