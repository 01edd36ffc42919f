"""The ladder: WARN -> REDUCE_ONLY -> HALTED -> DEMOTE -> KILL, and the breach episodes that climb it.

Each trigger names its first step. An episode (``SupervisorBreach``) opens at that step, or one above the step of
the same trigger's episode that cleared within ``SUPERVISOR_REPEAT_WINDOW_SECONDS`` (a breach that comes back);
while it stays open later sweeps only move ``last_seen``, except once, when the value first passes
``SUPERVISOR_WORSE_FACTOR`` x its threshold (a worse breach), which climbs one step (an episode that is worse from
its first sweep opens one step above its trigger's first step). A PAPER bot has nothing to
demote: DEMOTE becomes KILL. A tenant-level breach stops at HALTED (the tenant's trading state): killing a whole
tenant stays an operator's decision.

Every action is one audited service call (:func:`supervisor_act`): the step's own service (``trading_state_set``,
``bot_demote`` through leave-LIVE, ``bot_kill``), a ``RiskIncident`` of kind ``supervisor``, an audit event and,
once committed, an alert, each with the trigger, the value and the threshold. The supervisor never loosens: it
never sets ACTIVE, never lowers a state (a HALTED bot asked for REDUCE_ONLY stays HALTED), never unkills, never
promotes. Clearing an episode changes no state: going back down the ladder is the operator's act. An operator who
sets a bot ACTIVE while its REDUCE_ONLY or HALTED breach goes on sees the supervisor take that step again on its
next run (a new, recorded action); a demotion or a kill the operator undid is not redone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from bots import services as bot_services
from bots.models import Bot, Stage
from controlplane.alerts import alert
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.models import RiskIncident, TradingControl, TradingStateChoices
from execution.risk import services as risk_services
from oversight.models import SupervisorBreach
from oversight.supervisor.triggers import Measurement, Trigger

SUPERVISOR_ACTOR = "supervisor"
INCIDENT_KIND = "supervisor"
Step = SupervisorBreach.Step
STRICTNESS = {TradingStateChoices.ACTIVE: 0, TradingStateChoices.REDUCE_ONLY: 1, TradingStateChoices.HALTED: 2}
STEP_STATE = {Step.REDUCE_ONLY: TradingStateChoices.REDUCE_ONLY, Step.HALTED: TradingStateChoices.HALTED}


def _state_of(bot_id: int | None) -> str:
    scope = TradingControl.objects.filter(bot_id=bot_id) if bot_id else TradingControl.objects.filter(bot__isnull=True)
    control = scope.first()
    return control.state if control else TradingStateChoices.ACTIVE


def _tighten(*, bot_id: int | None, state: str, reason: str) -> bool:
    """Set ``state`` unless the scope is already as strict or stricter: never loosen."""
    if STRICTNESS[_state_of(bot_id)] >= STRICTNESS[state]:
        return False
    risk_services.trading_state_set(bot_id=bot_id, state=state, reason=reason, actor_name=SUPERVISOR_ACTOR)
    return True


def _effective_step(step: int, bot: Bot | None) -> int:
    if bot is None:
        return min(step, Step.HALTED)
    if step == Step.DEMOTE and bot.stage != Stage.LIVE:
        return Step.KILL  # a PAPER bot skips to the next step
    return min(step, Step.KILL)


def supervisor_act(
    *, tenant_id: int, bot_id: int | None, trigger: str, step: int, measurement: Measurement, fence: int
) -> tuple[int, RiskIncident]:
    """Take one step of the ladder for a bot (or the tenant in context, ``bot_id`` None) and record it: the step's
    service, a ``supervisor`` risk incident, the audit event and (after commit) the alert. Returns the step taken
    (DEMOTE becomes KILL for a PAPER bot) and the incident."""
    with transaction.atomic():
        bot = Bot.objects.select_for_update().get(pk=bot_id) if bot_id else None
        step = _effective_step(step, bot)
        label = Step(step).label
        what = f"bot {bot.name}" if bot else f"tenant {tenant_id}"
        reason = (
            f"supervisor: {trigger} {'unknown' if measurement.unknown else measurement.value} "
            f"vs threshold {measurement.threshold}: {label}"
            + (f" ({measurement.reason})" if measurement.reason else "")
        )
        changed = False
        if step in STEP_STATE:
            changed = _tighten(bot_id=bot_id, state=STEP_STATE[step], reason=reason)
        elif step == Step.DEMOTE:
            bot_services.bot_demote(bot_id=bot.id, actor_name=SUPERVISOR_ACTOR, to_stage=Stage.PAPER, reason=reason)
            changed = True
        elif step == Step.KILL and not bot.killed:
            bot_services.bot_kill(bot_id=bot.id, actor=None, actor_name=SUPERVISOR_ACTOR, reason=reason)
            changed = True
        details = {
            "trigger": trigger,
            "step": label,
            "value": measurement.value,
            "threshold": measurement.threshold,
            "unknown": measurement.unknown,
            "reason": measurement.reason,
            "values": measurement.values,
            "changed": changed,
            "fence": fence,
        }
        incident = RiskIncident.objects.create(
            tenant_id=tenant_id, bot=bot, kind=INCIDENT_KIND, details=details, trace_id=current_trace_id()
        )
        audit_record(
            action="supervisor.action",
            resource_type="bot" if bot else "tenant",
            resource_id=bot.id if bot else tenant_id,
            actor_name=SUPERVISOR_ACTOR,
            after={"incident_id": incident.pk, "bot_id": bot_id, **details},
        )
        transaction.on_commit(
            lambda: alert(
                event="supervisor.action",
                message=f"supervisor: {what}: {trigger} {details['value']} vs {details['threshold']}: {label}",
                tenant_id=tenant_id,
                bot_id=bot_id,
                incident_id=incident.pk,
                trigger=trigger,
                step=label,
                value=details["value"],
                threshold=details["threshold"],
            )
        )
    return step, incident


def observe(
    *,
    tenant_id: int,
    bot: Bot | None,
    trigger: Trigger,
    measurement: Measurement,
    thresholds: dict,
    now: datetime,
    fence: int,
) -> str:
    """Fold one measurement into the trigger's episode: ``acted``, ``ongoing``, ``pending`` (within its grace),
    ``cleared`` or ``ok``. ``measurement.breached`` must already be a bool (the sweep decides unknowns)."""
    bot_id = bot.id if bot else None
    with transaction.atomic():
        episodes = SupervisorBreach.objects.select_for_update().filter(bot_id=bot_id, trigger=trigger.name)
        episode = episodes.filter(cleared_at__isnull=True).first()
        if not measurement.breached:
            if episode is None:
                return "ok"
            episode.cleared_at, episode.last_seen = now, now
            episode.save(update_fields=["cleared_at", "last_seen"])
            return "cleared"
        grace = timedelta(seconds=thresholds[trigger.grace_key]) if trigger.grace_key else timedelta(0)
        first = measurement.first_step or trigger.first_step
        step = None
        if episode is None:
            window = now - timedelta(seconds=settings.SUPERVISOR_REPEAT_WINDOW_SECONDS)
            recent = episodes.filter(cleared_at__gte=window, step__gt=Step.PENDING).order_by("-cleared_at").first()
            episode = SupervisorBreach(
                tenant_id=tenant_id, bot=bot, trigger=trigger.name, first_seen=now, run_fence=fence, step=Step.PENDING
            )
            if recent is not None:
                step = max(first, recent.step + 1)
            elif grace.total_seconds() <= 0:
                step = first + (1 if measurement.worse else 0)
        elif episode.step == Step.PENDING:
            if now - episode.first_seen >= grace:
                step = first + (1 if measurement.worse else 0)
        elif measurement.worse and not episode.worse and episode.step < Step.KILL:
            step = episode.step + 1
        elif episode.step in STEP_STATE and STRICTNESS[_state_of(bot_id)] < STRICTNESS[STEP_STATE[episode.step]]:
            # Loosened (set ACTIVE) while the breach goes on: the same step again, recorded as a new action. A
            # demotion or kill undone by the operator is not redone: those went through their own gates.
            step = episode.step
        episode.last_seen, episode.value, episode.threshold = now, measurement.value, measurement.threshold
        episode.values = (
            {**measurement.values, "reason": measurement.reason} if measurement.reason else measurement.values
        )
        episode.worse = episode.worse or measurement.worse
        if step is not None:
            step = min(step, Step.KILL)
            taken, _ = supervisor_act(
                tenant_id=tenant_id,
                bot_id=bot_id,
                trigger=trigger.name,
                step=step,
                measurement=measurement,
                fence=fence,
            )
            episode.step, episode.acted_at, episode.run_fence = taken, now, fence
        episode.save()
        if step is not None:
            return "acted"
        return "pending" if episode.step == Step.PENDING else "ongoing"
