"""The supervisor's sweep: under its lock, every trigger over every unkilled PAPER and LIVE bot of every tenant
(suspended ones too: their positions still move), then the tenant-level triggers, then the run record.

One bot's or one tenant's failure is recorded in the run's ``errors`` and does not leave the others unguarded.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from bots.models import Bot, Stage
from controlplane import tenancy
from controlplane.selectors import all_tenant_ids
from oversight.models import SupervisorBreach
from oversight.supervisor import heartbeat
from oversight.supervisor.ladder import observe
from oversight.supervisor.thresholds import tenant_thresholds
from oversight.supervisor.triggers import FAIL_CLOSED_WHEN_LIVE, TRIGGERS, Measurement, Trigger

logger = logging.getLogger(__name__)


def _decide_unknown(m: Measurement, trigger: Trigger, bot: Bot | None, unknown: list, where: dict) -> Measurement:
    """An unknown is written down; it breaches only for a LIVE bot on a fail-closed trigger."""
    if m.breached is not None:
        return m
    fail_closed = bot is not None and bot.stage == Stage.LIVE and trigger.name in FAIL_CLOSED_WHEN_LIVE
    unknown.append({**where, "trigger": trigger.name, "reason": m.reason, "fail_closed": fail_closed})
    m.breached, m.unknown = fail_closed, True
    return m


def _observe(trigger, m, *, tenant_id, bot, thresholds, now, run, counts, unknown) -> None:
    where = {"tenant_id": tenant_id, "bot_id": bot.id if bot else None}
    if m is None:
        # Not applicable now: an episode left open (the bot's runner stopped, it left LIVE) ends here.
        m = Measurement(False)
    m = _decide_unknown(m, trigger, bot, unknown, where)
    counts[
        observe(
            tenant_id=tenant_id,
            bot=bot,
            trigger=trigger,
            measurement=m,
            thresholds=thresholds,
            now=now,
            fence=run.fence,
        )
    ] += 1


def sweep_tenant(*, tenant_id: int, now: datetime, run, counts: Counter, unknown: list, errors: list) -> int:
    """Every trigger for the tenant in context; returns the number of bots watched."""
    with transaction.atomic():
        thresholds = tenant_thresholds(tenant_id)
        bots = list(Bot.objects.filter(stage__in=[Stage.PAPER, Stage.LIVE], killed=False).order_by("id"))
    for bot in bots:
        for trigger in TRIGGERS:
            if trigger.scope != "bot":
                continue
            try:
                with transaction.atomic():
                    m = trigger.measure(bot, thresholds, now)
                _observe(
                    trigger,
                    m,
                    tenant_id=tenant_id,
                    bot=bot,
                    thresholds=thresholds,
                    now=now,
                    run=run,
                    counts=counts,
                    unknown=unknown,
                )
            except Exception as exc:  # one bot's failure must not leave the others unguarded
                logger.exception("supervisor: trigger failed", extra={"bot_id": bot.id, "trigger": trigger.name})
                errors.append({"tenant_id": tenant_id, "bot_id": bot.id, "trigger": trigger.name, "error": repr(exc)})
    for trigger in TRIGGERS:
        if trigger.scope != "tenant":
            continue
        try:
            m = trigger.measure(tenant_id, thresholds, now)
            _observe(
                trigger,
                m,
                tenant_id=tenant_id,
                bot=None,
                thresholds=thresholds,
                now=now,
                run=run,
                counts=counts,
                unknown=unknown,
            )
        except Exception as exc:
            logger.exception("supervisor: tenant trigger failed", extra={"trigger": trigger.name})
            errors.append({"tenant_id": tenant_id, "bot_id": None, "trigger": trigger.name, "error": repr(exc)})
    return len(bots)


def supervisor_sweep(*, now: datetime | None = None) -> dict | None:
    """One supervised pass over every tenant, or None when another supervisor holds the lock."""
    with heartbeat.supervisor_lock() as held:
        if not held:
            logger.info("supervisor: another supervisor holds the lock; this run returns")
            return None
        now = now or timezone.now()
        run = heartbeat.run_start(now)
        counts: Counter = Counter()
        unknown: list = []
        errors: list = []
        tenants = bots = open_breaches = 0
        for tenant_id in all_tenant_ids():
            try:
                with tenancy.tenant_context(tenant_id):
                    bots += sweep_tenant(
                        tenant_id=tenant_id, now=now, run=run, counts=counts, unknown=unknown, errors=errors
                    )
                    with transaction.atomic():
                        open_breaches += SupervisorBreach.objects.filter(cleared_at__isnull=True).count()
                tenants += 1
            except Exception as exc:
                logger.exception("supervisor: tenant sweep failed", extra={"tenant_id": tenant_id})
                errors.append({"tenant_id": tenant_id, "error": repr(exc)})
        run.tenants, run.bots, run.actions, run.breaches_open = tenants, bots, counts["acted"], open_breaches
        run.unknown, run.errors = unknown, errors
        heartbeat.run_finish(run)
        return {
            "fence": run.fence,
            "tenants": tenants,
            "bots": bots,
            "unknown": len(unknown),
            "errors": len(errors),
            **counts,
        }
