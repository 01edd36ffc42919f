"""An operator's resolution of a reconcile mismatch, on our books (oversight.reconcile.bot_reconcile_resolve calls it).

- ``accept_venue``: our books take the venue's numbers. Each differing instrument's position of the bot moves by
  the difference (venue minus internal) of a fresh snapshot, so the next reconcile matches. On a live account
  shared by several bots the whole difference lands on the bot being resolved (the venue cannot say whose it is).
  The venue inventory moves by the same difference. ``average_price`` is kept while the position keeps its
  direction, is 0 when it becomes flat, and otherwise (opened from flat, or flipped) is the latest complete bar's
  close; with no bar the resolution is refused, never given an invented cost. Realized PnL and fees are unchanged: nothing traded.
- ``flatten``: the same booking, then one market order per instrument the venue holds, of the opposite side and
  that size, recorded through the OMS. Its fills, recorded by the OMS like any other, bring both the venue and our
  books to flat (and realize the PnL against the accepted average price). Booking straight to flat instead would
  count the close twice once those fills arrive.

Both are refused while the bot has open orders at the venue: a fill the venue already counts but the OMS has not
recorded yet would be booked twice (once here, once when recorded).
"""

from __future__ import annotations

from decimal import Decimal

from controlplane.books import book_for_venue
from controlplane.errors import ControlPlaneError, ErrorCode
from execution.orders import booking, oms, writer
from execution.orders.live_exit import resolve_unmanaged_incidents
from execution.models import Instrument, Order, StrategyPosition
from execution.risk.positions import latest_mark

TOLERANCE = Decimal("1e-9")
ACCEPT_VENUE, FLATTEN = "accept_venue", "flatten"


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


def _new_average(
    before_quantity: Decimal, before_average: Decimal, after_quantity: Decimal, instrument: Instrument
) -> tuple[Decimal | None, str]:
    """(average price, where it came from); None when no bar can price the position."""
    if after_quantity == 0:
        return Decimal(0), "flat"
    if before_quantity != 0 and (before_quantity > 0) == (after_quantity > 0):
        return before_average, "kept"
    mark = latest_mark(instrument)
    if mark is None:
        return None, "no_bar"
    return mark.price, f"{'stale ' if mark.stale else ''}mark {mark.timeframe} bar {mark.bar_ts.isoformat()}"


def book_resolution(*, bot, reconciliation, snapshot, action: str, reason: str, actor_name: str) -> dict:
    """Apply ``action`` to our books from ``snapshot`` (inside the caller's transaction) and, for a flatten, record
    the closing orders. Returns what was done, per instrument, for the report and the audit event."""
    open_orders = sorted(
        Order.objects.filter(bot=bot, venue=reconciliation.venue, status__in=Order.OPEN_STATUSES).values_list(
            "client_order_id", flat=True
        )
    )
    if open_orders:
        raise ControlPlaneError(
            ErrorCode.CONFLICT,
            f"Bot {bot.name} has open orders at {reconciliation.venue}; their fills would move "
            "the books again after the resolution.",
            suggested_fix="Wait until the OMS has recorded their fills (or cancel them), reconcile again, then "
            "resolve.",
            details={"open_orders": open_orders},
        )
    internal = {s: _decimal(q) for s, q in snapshot.internal.items()}
    venue = {s: _decimal(q) for s, q in snapshot.venue.items()}
    deltas = {s: venue.get(s, Decimal(0)) - internal.get(s, Decimal(0)) for s in sorted(set(internal) | set(venue))}
    deltas = {s: d for s, d in deltas.items() if abs(d) > TOLERANCE}
    to_close = {s: q for s, q in sorted(venue.items()) if abs(q) > TOLERANCE} if action == FLATTEN else {}
    symbols = sorted(set(deltas) | set(to_close))
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    unknown = [s for s in symbols if s not in instruments]
    if unknown:
        raise ControlPlaneError(
            ErrorCode.CONFLICT,
            f"The venue holds instruments we do not know: {', '.join(unknown)}.",
            details={"instruments": unknown},
        )
    positions: dict[str, dict] = {}
    unpriced: list[str] = []
    book = book_for_venue(reconciliation.venue)  # the book the report compared: the only one the venue speaks for
    with writer.oms_writes():
        StrategyPosition.objects.bulk_create(
            [StrategyPosition(tenant_id=bot.tenant_id, bot=bot, instrument=instruments[s], book=book) for s in deltas],
            ignore_conflicts=True,
        )
        for symbol, delta in deltas.items():
            position = StrategyPosition.objects.select_for_update().get(
                bot=bot, instrument=instruments[symbol], book=book
            )
            after_quantity = position.quantity + delta
            average, priced_by = _new_average(
                position.quantity, position.average_price, after_quantity, instruments[symbol]
            )
            if average is None:
                unpriced.append(symbol)
                continue
            positions[symbol] = {
                "before": {"quantity": str(position.quantity), "average_price": str(position.average_price)},
                "after": {"quantity": str(after_quantity), "average_price": str(average)},
                "average_price_from": priced_by,
                "realized_pnl": str(position.realized_pnl),
            }
            position.quantity, position.average_price = after_quantity, average
            position.save(update_fields=["quantity", "average_price", "updated_at"])
            # The tenant's holdings at the venue move with the books: a shared crypto account's balance is
            # attributed to each bot through them (execution.orders.live_positions).
            booking._add_inventory(reconciliation.venue, symbol, delta)
        if unpriced:
            raise ControlPlaneError(
                ErrorCode.CONFLICT,
                f"No bar of {', '.join(unpriced)} to carry the venue's position at; nothing was changed.",
                suggested_fix="Import recent bars of the instrument, or close the position at the venue and "
                "accept the venue's (flat) state.",
                details={"instruments": unpriced},
            )
        flatten = []
        for symbol, quantity in to_close.items():
            mark = latest_mark(instruments[symbol])
            intent = oms.record_reconcile_flatten(
                bot=bot,
                venue=reconciliation.venue,
                instrument=instruments[symbol],
                quantity=quantity,
                reference_price=mark.price if mark else None,
                idempotency_key=f"reconcile-{reconciliation.id}-{symbol}",
                actor_name=actor_name,
                detail={
                    "reconciliation_id": reconciliation.id,
                    "reason": reason,
                    "exempt_from": str(ErrorCode.RECONCILE_MISMATCH),
                },
            )
            flatten.append({"instrument": symbol, "intent_id": intent.id, "venue_quantity": str(quantity)})
    resolved = []
    if reconciliation.purpose == reconciliation.Purpose.LIVE_EXIT:
        resolved = resolve_unmanaged_incidents(
            bot=bot, reconciliation=reconciliation, action=action, actor_name=actor_name
        )
    return {
        "book": str(book),
        "snapshot": {"internal": snapshot.internal, "venue": snapshot.venue},
        "positions": positions,
        "flatten": flatten,
        "incidents_resolved": resolved,
    }


def send_resolution_orders(*, intent_ids: list[int]) -> list[dict]:
    return oms.send_reconcile_flatten(intent_ids=intent_ids)
