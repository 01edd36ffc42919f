"""Runners: start (safe-start), stop, restart, heartbeat. Lock order everywhere: the bot, then the runner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from bots import selectors
from bots.routing import raise_if_integrations_blocked
from bots.models import Bot, Runner
from bots.services.common import _actor_label, _illegal, _locked_bot
from controlplane.outbox import outbox_publish
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id


def _refuse_unrunnable(bot: Bot) -> None:
    """Safe-start: every reason a bot may not run, each with its own code."""
    block = selectors.trading_block(bot)
    if block is not None:
        raise block
    raise_if_integrations_blocked(bot)


def runner_start(
    *,
    bot_id: int,
    actor=None,
    actor_name: str | None = None,
    mode: str = Runner.Mode.LIVE,
    replay_start: datetime | None = None,
    replay_end: datetime | None = None,
) -> Runner:
    """Start a bot's runner: live (ticked by beat) or replay (ticks through a range of stored bars at once)."""
    if mode == Runner.Mode.REPLAY:
        problems = {}
        if replay_start is None:
            problems["replay_start"] = ["A replay needs the start of its date range."]
        if replay_end is None:
            problems["replay_end"] = ["A replay needs the end of its date range."]
        elif replay_start is not None and replay_end <= replay_start:
            problems["replay_end"] = ["Must be after replay_start."]
        if problems:
            raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details=problems)
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        active = selectors.active_runner(bot.id)
        if active is not None:
            raise ControlPlaneError(
                ErrorCode.RUNNER_ALREADY_ACTIVE, details={"runner_id": active.id, "status": active.status}
            )
        _refuse_unrunnable(bot)
        now = timezone.now()
        runner = Runner.objects.create(
            bot=bot,
            status=Runner.Status.RUNNING,
            started_by=_actor_label(actor, actor_name),
            started_at=now,
            last_heartbeat_at=now,
            trace_id=current_trace_id(),
            mode=mode,
            replay_start=replay_start,
            replay_end=replay_end,
            parameters_hash=bot.parameters_hash,
        )
        audit_record(
            action="runner.start",
            resource_type="runner",
            resource_id=runner.id,
            actor=actor,
            actor_name=actor_name,
            after={"bot_id": bot.id, "status": runner.status, "mode": mode},
        )
        if mode == Runner.Mode.REPLAY:
            # The execution layer runs replays; it sits above bots, so the task is named, not imported.
            tenant_id, runner_id = bot.tenant_id, runner.id
            outbox_publish(
                task="execution.replay_runner",
                kwargs={"tenant_id": tenant_id, "runner_id": runner_id},
                queue="backtests",
                tenant_id=tenant_id,
                what=f"replay of runner {runner_id}",
            )
    return runner


def runner_finish_replay(*, runner_id: int, summary: dict) -> Runner:
    """A replay that reached the end of its range stops with what it did as the reason."""
    with transaction.atomic():
        _, runner = _locked_runner(runner_id)
        if runner.status != Runner.Status.RUNNING:
            return runner
        runner.status, runner.stopped_at = Runner.Status.STOPPED, timezone.now()
        runner.stop_reason = (
            f"replay finished: {summary.get('bots', 0)} bot-ticks, "
            f"{summary.get('decisions', 0)} decisions, {summary.get('intents_created', 0)} intents"
        )
        runner.save(update_fields=["status", "stopped_at", "stop_reason"])
        audit_record(
            action="runner.replay_finished",
            resource_type="runner",
            resource_id=runner.id,
            actor_name="replay",
            before={"status": Runner.Status.RUNNING},
            after={"status": runner.status, "summary": summary},
        )
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
        audit_record(
            action="runner.stop",
            resource_type="runner",
            resource_id=runner.id,
            actor=actor,
            actor_name=actor_name,
            before={"status": before},
            after={"status": runner.status, "reason": runner.stop_reason},
        )
    return runner


def runner_restart(*, runner_id: int, actor=None, actor_name: str | None = None) -> Runner:
    """Run the same runner again, after the same safe-start checks as a start."""
    with transaction.atomic():
        bot, runner = _locked_runner(runner_id)
        if runner.status in (Runner.Status.STARTING, Runner.Status.STOPPING):
            raise _illegal(f"Runner {runner.id}", runner.status, Runner.Status.RUNNING, "Wait until it settles.")
        active = selectors.active_runner(bot.id)
        if active is not None and active.id != runner.id:
            raise ControlPlaneError(
                ErrorCode.RUNNER_ALREADY_ACTIVE, details={"runner_id": active.id, "status": active.status}
            )
        _refuse_unrunnable(bot)
        before = runner.status
        now = timezone.now()
        runner.status, runner.last_heartbeat_at, runner.stopped_at, runner.stop_reason = (
            Runner.Status.RUNNING,
            now,
            None,
            "",
        )
        runner.restart_count += 1
        runner.trace_id = current_trace_id()
        # Another runner of the bot may have ticked since this one stopped: its first tick looks the bot's newest
        # traced bar up again (execution.tick.batches).
        runner.last_tick_bar_ts = None
        runner.save(
            update_fields=[
                "status",
                "last_heartbeat_at",
                "stopped_at",
                "stop_reason",
                "restart_count",
                "trace_id",
                "last_tick_bar_ts",
            ]
        )
        audit_record(
            action="runner.restart",
            resource_type="runner",
            resource_id=runner.id,
            actor=actor,
            actor_name=actor_name,
            before={"status": before},
            after={"status": runner.status, "restart_count": runner.restart_count},
        )
    return runner


def runner_heartbeat(*, runner_id: int, ticked_at: datetime | None = None) -> bool:
    """The tick's proof of life (issue 5 calls it per runner per tick). False if the runner is not RUNNING."""
    now = timezone.now()
    fields: dict[str, Any] = {"last_heartbeat_at": now}
    if ticked_at is not None:
        fields["last_tick_at"] = ticked_at
    return Runner.objects.filter(pk=runner_id, status=Runner.Status.RUNNING).update(**fields) == 1
