"""Leaving LIVE: the one path by which a LIVE bot stops trading real money, whoever asks (an operator's demotion or
retirement, the watchdog's demotion of a failed runner, a configuration change that sends it back to LAB).

In order, and never skipped:

1. :func:`leave_live` (inside the caller's transaction, the bot locked, still LIVE) records a ``leave_live`` cancel
   request for the bot with the venue and instruments being left, and audits it. Once that commits, the declared
   hook ``bots.kill.cancel_orders`` hands it to the OMS, which cancels the bot's open orders exactly as a kill does (the request is claimed
   once: PENDING to DONE or FAILED).
2. The OMS then (execution.orders.live_exit) reads what the venue still holds in those instruments and calls
   :func:`bot_record_live_exit`: a ``live_exit`` reconciliation, MATCHED and flat when nothing is left, else
   MISMATCH; for a MISMATCH it opens an ``UNMANAGED_LIVE_POSITION`` risk incident and alerts.
3. Until that report is resolved with the reconcile resolutions (``flatten`` or ``accept_venue``,
   :func:`oversight.reconcile.bot_reconcile_resolve`), the LIVE gate ``live_exit_resolved`` refuses the bot;
   it also refuses while the exit is not accounted for yet (the OMS has not run it).
"""

from __future__ import annotations

from django.db import transaction

from bots.models import Bot, CancelRequest, Reconciliation, Stage
from bots.services.common import _actor_label, _locked_bot
from bots.services.kills import _request_cancel
from controlplane.books import book_for_venue
from controlplane.services import audit_record
from controlplane.trace import current_trace_id

POSITION_TOLERANCE = 1e-9


def leave_live(
    *,
    bot: Bot,
    to_stage: str,
    reason: str,
    actor=None,
    actor_name: str | None = None,
    venue: str | None = None,
    instruments: list[str] | None = None,
) -> CancelRequest:
    """Start leaving LIVE for ``bot`` (locked by the caller, still LIVE in the database) toward ``to_stage``.

    ``venue`` and ``instruments`` are those of the LIVE configuration when the caller is about to change them (a
    configuration edit): what the venue holds is looked up where the bot traded, not where it will."""
    if bot.stage != Stage.LIVE:
        raise ValueError(f"bot {bot.id} is {bot.stage}, not LIVE: there is nothing to leave")
    label = _actor_label(actor, actor_name)
    detail = {
        "venue": venue or bot.venue,
        "instruments": list(instruments if instruments is not None else bot.instruments),
        "from_stage": Stage.LIVE,
        "to_stage": to_stage,
        "reason": reason,
    }
    cancel = _request_cancel(
        scope=CancelRequest.Scope.BOT,
        reason=f"leaving LIVE for {to_stage}: {reason}",
        requested_by=label,
        bot=bot,
        tenant_id=bot.tenant_id,
        purpose=CancelRequest.Purpose.LEAVE_LIVE,
        detail=detail,
    )
    audit_record(
        action="bot.leave_live",
        resource_type="bot",
        resource_id=bot.id,
        actor=actor,
        actor_name=actor_name,
        before={"stage": Stage.LIVE},
        after={**detail, "cancel_request_id": cancel.id},
    )
    return cancel


def _flat(quantities: dict[str, float]) -> bool:
    return all(abs(q) <= POSITION_TOLERANCE for q in quantities.values())


def bot_record_live_exit(
    *,
    cancel_request_id: int,
    book: dict[str, float],
    venue_positions: dict[str, float] | None,
    open_orders: list[str],
    venue_error: dict | None = None,
) -> Reconciliation:
    """Record what the venue held when the bot left LIVE (the OMS calls it once the exit's cancels ran, inside its
    transaction). ``book``: the bot's live book in the instruments left; ``venue_positions``: the venue's, None
    when the venue could not answer; ``open_orders``: client order ids the cancel did not close. Anything held,
    anything still working or a venue that cannot say makes the report a MISMATCH (fail closed)."""
    cancel = CancelRequest.objects.get(pk=cancel_request_id)
    with transaction.atomic():
        bot = _locked_bot(cancel.bot_id)
        venue_known = venue_positions is not None
        venue_positions = venue_positions or {}
        symbols = sorted(set(book) | set(venue_positions))
        differences = {
            s: {"internal": book.get(s, 0.0), "venue": venue_positions.get(s, 0.0)}
            for s in symbols
            if abs(book.get(s, 0.0)) > POSITION_TOLERANCE or abs(venue_positions.get(s, 0.0)) > POSITION_TOLERANCE
        }
        is_flat = venue_known and _flat(book) and _flat(venue_positions)
        unmanaged = bool(differences) or bool(open_orders) or not venue_known
        venue = cancel.detail.get("venue", bot.venue)
        report = Reconciliation.objects.create(
            bot=bot,
            venue=venue,
            book=book_for_venue(venue),
            purpose=Reconciliation.Purpose.LIVE_EXIT,
            status=Reconciliation.Status.MISMATCH if unmanaged else Reconciliation.Status.MATCHED,
            internal_positions=book,
            venue_positions=venue_positions,
            differences=differences,
            is_flat=is_flat,
            requested_by=cancel.requested_by,
            trace_id=current_trace_id(),
        )
        audit_record(
            action="bot.live_exit",
            resource_type="bot",
            resource_id=bot.id,
            actor_name="oms",
            before={"stage": Stage.LIVE},
            after={
                "stage": bot.stage,
                "reconciliation_id": report.id,
                "status": report.status,
                "venue": report.venue,
                "held": differences,
                "open_orders": open_orders,
                "venue_error": venue_error,
                "cancel_request_id": cancel.id,
            },
        )
    return report
