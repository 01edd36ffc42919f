"""Runners: start (safe-start), stop, restart, heartbeat. Lock order everywhere: the bot, then the runner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from bots import selectors
from bots.gates import raise_if_integrations_blocked
from bots.models import Bot, Runner
from bots.services.common import _actor_label, _illegal, _locked_bot
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id


def _refuse_unrunnable(bot: Bot) -> None:
    """Safe-start: every reason a bot may not run, each with its own code."""
    block = selectors.trading_block(bot)
    if block is not None:
        raise block
    raise_if_integrations_blocked(bot)


def runner_start(*, bot_id: int, actor=None, actor_name: str | None = None) -> Runner:
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        active = selectors.active_runner(bot.id)
        if active is not None:
            raise ControlPlaneError(ErrorCode.RUNNER_ALREADY_ACTIVE,
                                    details={"runner_id": active.id, "status": active.status})
        _refuse_unrunnable(bot)
        now = timezone.now()
        runner = Runner.objects.create(
            bot=bot, status=Runner.Status.RUNNING, started_by=_actor_label(actor, actor_name), started_at=now,
            last_heartbeat_at=now, trace_id=current_trace_id(),
        )
        audit_record(action="runner.start", resource_type="runner", resource_id=runner.id, actor=actor,
                     actor_name=actor_name, after={"bot_id": bot.id, "status": runner.status})
    return runner


def _locked_runner(runner_id: int) -> tuple[Bot, Runner]:
    """Lock the bot, then the runner: the one lock order of every runner transition."""
    bot_id = Runner.objects.filter(pk=runner_id).values_list("bot_id", flat=True).first()
    if bot_id is None:
        raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No runner {runner_id} in this tenant.")
    bot = _locked_bot(bot_id)
    return bot, Runner.objects.select_for_update().get(pk=runner_id)


def runner_stop(*, runner_id: int, actor=None, actor_name: str | None = None, reason: str = "") -> Runner:
    with transaction.atomic():
        _, runner = _locked_runner(runner_id)
        if runner.status in Runner.TERMINAL_STATUSES:
            raise _illegal(f"Runner {runner.id}", runner.status, Runner.Status.STOPPED)
        before = runner.status
        runner.status, runner.stopped_at = Runner.Status.STOPPED, timezone.now()
        runner.stop_reason = reason or f"stopped by {_actor_label(actor, actor_name)}"
        runner.save(update_fields=["status", "stopped_at", "stop_reason"])
        audit_record(action="runner.stop", resource_type="runner", resource_id=runner.id, actor=actor,
                     actor_name=actor_name, before={"status": before},
                     after={"status": runner.status, "reason": runner.stop_reason})
    return runner


def runner_restart(*, runner_id: int, actor=None, actor_name: str | None = None) -> Runner:
    """Run the same runner again, after the same safe-start checks as a start."""
    with transaction.atomic():
        bot, runner = _locked_runner(runner_id)
        if runner.status in (Runner.Status.STARTING, Runner.Status.STOPPING):
            raise _illegal(f"Runner {runner.id}", runner.status, Runner.Status.RUNNING, "Wait until it settles.")
        active = selectors.active_runner(bot.id)
        if active is not None and active.id != runner.id:
            raise ControlPlaneError(ErrorCode.RUNNER_ALREADY_ACTIVE,
                                    details={"runner_id": active.id, "status": active.status})
        _refuse_unrunnable(bot)
        before = runner.status
        now = timezone.now()
        runner.status, runner.last_heartbeat_at, runner.stopped_at, runner.stop_reason = (
            Runner.Status.RUNNING, now, None, "")
        runner.restart_count += 1
        runner.trace_id = current_trace_id()
        runner.save(update_fields=["status", "last_heartbeat_at", "stopped_at", "stop_reason", "restart_count",
                                   "trace_id"])
        audit_record(action="runner.restart", resource_type="runner", resource_id=runner.id, actor=actor,
                     actor_name=actor_name, before={"status": before},
                     after={"status": runner.status, "restart_count": runner.restart_count})
    return runner


def runner_heartbeat(*, runner_id: int, ticked_at: datetime | None = None) -> bool:
    """The tick's proof of life (issue 5 calls it per runner per tick). False if the runner is not RUNNING."""
    now = timezone.now()
    fields: dict[str, Any] = {"last_heartbeat_at": now}
    if ticked_at is not None:
        fields["last_tick_at"] = ticked_at
    return Runner.objects.filter(pk=runner_id, status=Runner.Status.RUNNING).update(**fields) == 1
