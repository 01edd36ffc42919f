"""Reconcile, in one place: the bot's positions against its venue's (on request, as a job, and on the beat for
every RUNNING LIVE bot), and an operator's resolution of a mismatch (oversight.reconcile_resolution books it).

The facts come from below: what our books and the venue hold (execution.orders.holdings), what a bot left at its venue
when it left LIVE (execution.orders.live_exit, recorded by bots.services.bot_record_live_exit). Unkill's rule (a flat
MATCHED report since the kill) is a read of the bot's own reports: bots.selectors.flat_reconciliation_since_kill.

A report compares one book, the one its venue speaks for (``controlplane.books.book_for_venue``): the live book
for the bot's real venue, the paper book for a sim venue. A matched live report is what the LIVE gate asks for.
"""

from __future__ import annotations

import copy
import logging

from django.db import transaction
from django.utils import timezone

from bots.models import Job, Reconciliation, Runner, Stage
from bots.selectors import kill_block, trading_block
from bots.services.common import _actor_label, _illegal, _locked_bot
from controlplane.books import book_for_venue
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.orders.holdings import PositionSnapshot, position_snapshot
from oversight import reconcile_resolution

logger = logging.getLogger(__name__)

POSITION_TOLERANCE = 1e-9
SCHEDULED_ACTOR = "beat:reconcile"


def bot_reconcile(*, bot_id: int, actor=None, actor_name: str | None = None) -> Reconciliation:
    """Compare the bot's positions with its venue's (execution.orders.holdings). A difference flags the bot (blocking
    starts and orders); a match clears the flag. A venue that cannot be read: refused, nothing recorded."""
    label = _actor_label(actor, actor_name)
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        snapshot = position_snapshot(bot=bot)
        instruments = sorted(set(snapshot.internal) | set(snapshot.venue))
        differences = {
            symbol: {"internal": snapshot.internal.get(symbol, 0.0), "venue": snapshot.venue.get(symbol, 0.0)}
            for symbol in instruments
            if abs(snapshot.internal.get(symbol, 0.0) - snapshot.venue.get(symbol, 0.0)) > POSITION_TOLERANCE
        }
        is_flat = all(abs(q) <= POSITION_TOLERANCE for q in (*snapshot.internal.values(), *snapshot.venue.values()))
        result = Reconciliation.objects.create(
            bot=bot,
            venue=bot.venue,
            book=book_for_venue(bot.venue),
            status=Reconciliation.Status.MISMATCH if differences else Reconciliation.Status.MATCHED,
            internal_positions=snapshot.internal,
            venue_positions=snapshot.venue,
            differences=differences,
            is_flat=is_flat,
            requested_by=label,
            trace_id=current_trace_id(),
        )
        flagged_before = bot.reconcile_mismatch
        bot.reconcile_mismatch = bool(differences)
        bot.save(update_fields=["reconcile_mismatch", "updated_at"])
        audit_record(
            action="bot.reconcile",
            resource_type="bot",
            resource_id=bot.id,
            actor=actor,
            actor_name=actor_name,
            before={"reconcile_mismatch": flagged_before},
            after={
                "reconcile_mismatch": bot.reconcile_mismatch,
                "reconciliation_id": result.id,
                "book": result.book,
                "status": result.status,
                "differences": differences,
            },
        )
    return result


def _as_traded(bot, report: Reconciliation):
    """The bot as it was when it left LIVE (its venue then), for reading that venue's positions."""
    traded = copy.copy(bot)
    traded.venue = report.venue
    return traded


def bot_reconcile_resolve(
    *, bot_id: int, action: str, reason: str, actor=None, actor_name: str | None = None
) -> tuple[Reconciliation, Reconciliation]:
    """An operator's decision about the bot's latest MISMATCH report: ``accept_venue`` (our books take the venue's
    numbers) or ``flatten`` (close what the venue holds with market orders through the OMS; kill switches still
    refuse it, the mismatch flag does not). The resolution is stored on the report and audited with each position
    before and after; the orders are sent once that commits; then the bot is reconciled again, and only a match
    clears the flag. Returns (the resolved report, the reconcile that followed).

    A bot that left LIVE with something still at its venue (an unresolved ``live_exit`` report, see
    bots.services.leaving) is resolved the same way, for the instruments it left there: ``flatten`` closes them at
    the venue it traded on, ``accept_venue`` keeps them on its books; either resolves the
    ``UNMANAGED_LIVE_POSITION`` incident and lets the LIVE gate pass again."""
    errors = {}
    if action not in Reconciliation.Resolution.values:
        errors["action"] = [f"Must be one of {', '.join(Reconciliation.Resolution.values)}."]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Required: say why this resolution is right."]
    if errors:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details=errors)
    label = _actor_label(actor, actor_name)
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        mismatches = Reconciliation.objects.select_for_update().filter(bot=bot, status=Reconciliation.Status.MISMATCH)
        report = (
            mismatches.filter(purpose=Reconciliation.Purpose.LIVE_EXIT, resolution="").order_by("-id").first()
            or mismatches.order_by("-id").first()
        )
        exit_report = report is not None and report.purpose == Reconciliation.Purpose.LIVE_EXIT
        if report is None or report.resolution or not (bot.reconcile_mismatch or exit_report):
            raise _illegal(
                f"Bot {bot.name}",
                "not flagged" if not bot.reconcile_mismatch else "resolved",
                action,
                "Only a bot flagged by a reconcile mismatch, or one that left LIVE with a position at "
                "its venue, with an unresolved report can be resolved; reconcile it again first.",
            )
        if action == Reconciliation.Resolution.FLATTEN:
            # A retired bot may still close what it left at the venue when it retired from LIVE; kills still refuse.
            retired_exit = exit_report and bot.stage == Stage.RETIRED
            block = kill_block(bot) if retired_exit else trading_block(bot)
            if block is not None and block.code != ErrorCode.RECONCILE_MISMATCH:
                raise block
        snapshot = position_snapshot(bot=_as_traded(bot, report) if exit_report else bot)
        if exit_report:  # only what the bot left behind: other bots on a shared account keep theirs
            kept = set(report.internal_positions) | set(report.venue_positions) | set(report.differences)
            snapshot = PositionSnapshot(
                internal={s: q for s, q in snapshot.internal.items() if s in kept},
                venue={s: q for s, q in snapshot.venue.items() if s in kept},
            )
        booked = reconcile_resolution.book_resolution(
            bot=bot, reconciliation=report, snapshot=snapshot, action=action, reason=reason, actor_name=label
        )
        report.resolution, report.resolution_reason, report.resolved_by = action, reason, label
        report.resolved_at, report.resolution_detail = timezone.now(), booked
        report.save(
            update_fields=["resolution", "resolution_reason", "resolved_by", "resolved_at", "resolution_detail"]
        )
        audit_record(
            action="bot.reconcile_resolve",
            resource_type="bot",
            resource_id=bot.id,
            actor=actor,
            actor_name=actor_name,
            before={
                "reconciliation_id": report.id,
                "reconcile_mismatch": True,
                "positions": {s: p["before"] for s, p in booked["positions"].items()},
            },
            after={
                "resolution": action,
                "reason": reason,
                "positions": {s: p["after"] for s, p in booked["positions"].items()},
                "flatten": booked["flatten"],
            },
        )
    detail = dict(booked)
    if booked["flatten"]:
        detail["orders"] = reconcile_resolution.send_resolution_orders(
            intent_ids=[f["intent_id"] for f in booked["flatten"]]
        )
    followup = bot_reconcile(bot_id=bot_id, actor=actor, actor_name=actor_name)
    detail["followup_reconciliation_id"], detail["followup_status"] = followup.id, followup.status
    Reconciliation.objects.filter(pk=report.pk).update(resolution_detail=detail)
    report.resolution_detail = detail
    return report, followup


def reconcile_job_handler(job: Job) -> dict:
    result = bot_reconcile(bot_id=job.bot_id, actor_name=f"job:{job.id}")
    return {"reconciliation_id": result.id, "status": result.status, "differences": result.differences}


def reconcile_running_live_bots() -> dict:
    """The scheduled live reconcile: each RUNNING LIVE bot of the current tenant, through :func:`bot_reconcile`. A
    venue that cannot answer is reported per bot (the bot keeps its flag as it was: nothing is assumed flat) and
    the others still run."""
    bot_ids = sorted(
        set(
            Runner.objects.filter(
                status=Runner.Status.RUNNING, mode=Runner.Mode.LIVE, bot__stage=Stage.LIVE
            ).values_list("bot_id", flat=True)
        )
    )
    result: dict = {"matched": [], "mismatched": [], "failed": []}
    for bot_id in bot_ids:
        try:
            reconciliation = bot_reconcile(bot_id=bot_id, actor_name=SCHEDULED_ACTOR)
        except ControlPlaneError as error:
            logger.warning("live reconcile failed", extra={"bot_id": bot_id, "error_code": str(error.code)})
            result["failed"].append({"bot_id": bot_id, "error_code": str(error.code), "message": error.message})
            continue
        key = "mismatched" if reconciliation.differences else "matched"
        result[key].append(bot_id)
    return result
