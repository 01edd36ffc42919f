"""Bots: create, edit, demote, and the starter pack (promotion is judged on top: oversight.promotion)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction

from bots.models import STAGE_ORDER, Bot, Stage
from bots.services.common import (
    CONFIG_FIELDS,
    EDITABLE_FIELDS,
    _illegal,
    _locked_bot,
    _validated_config,
    _validated_risk_limits,
)
from bots.services.leaving import leave_live
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record


def bot_create(
    *,
    actor,
    name: str,
    strategy: str,
    parameters: Mapping[str, Any] | None = None,
    instruments: list[str],
    timeframe: str = "1m",
    venue: str = "sim",
    data_source: str = "imported",
    risk_limits: dict | None = None,
    starter_key: str = "",
    actor_name: str | None = None,
) -> Bot:
    clean, params_hash = _validated_config(strategy, parameters or {})
    risk_limits = _validated_risk_limits(risk_limits or {})
    with transaction.atomic():
        if Bot.objects.filter(name=name).exists():
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR, details={"name": [f"A bot named {name!r} already exists in this tenant."]}
            )
        bot = Bot.objects.create(
            name=name,
            strategy=strategy,
            parameters=clean,
            parameters_hash=params_hash,
            instruments=instruments,
            timeframe=timeframe,
            venue=venue,
            data_source=data_source,
            risk_limits=risk_limits,
            starter_key=starter_key,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            action="bot.create",
            resource_type="bot",
            resource_id=bot.id,
            actor=actor,
            actor_name=actor_name,
            after=bot.snapshot(),
        )
    return bot


def bot_update(*, bot_id: int, actor, changes: Mapping[str, Any]) -> Bot:
    """Edit a bot. A configuration change past LAB sends it back to LAB: its evidence was for the old one. A LIVE
    bot leaves LIVE through :func:`bots.services.leaving.leave_live`, for the venue and instruments it traded."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR, details={name: ["This field cannot be changed."] for name in sorted(unknown)}
        )
    if "risk_limits" in changes:
        _validated_risk_limits(changes["risk_limits"])
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        if bot.stage == Stage.RETIRED:
            raise ControlPlaneError(ErrorCode.BOT_RETIRED, f"Bot {bot.name} is retired and cannot change.")
        before = bot.snapshot()
        if "name" in changes and changes["name"] != bot.name and Bot.objects.filter(name=changes["name"]).exists():
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR, details={"name": [f"A bot named {changes['name']!r} already exists."]}
            )
        strategy = changes.get("strategy", bot.strategy)
        parameters = changes.get("parameters", bot.parameters if strategy == bot.strategy else {})
        clean, params_hash = _validated_config(strategy, parameters)
        for field, value in changes.items():
            setattr(bot, field, value)
        bot.strategy, bot.parameters, bot.parameters_hash = strategy, clean, params_hash
        config_changed = any(before[field] != getattr(bot, field) for field in CONFIG_FIELDS)
        if config_changed and bot.stage == Stage.LIVE:
            leave_live(
                bot=bot,
                to_stage=Stage.LAB,
                reason="configuration changed",
                actor=actor,
                venue=before["venue"],
                instruments=before["instruments"],
            )
        if config_changed and bot.stage != Stage.LAB:
            bot.stage = Stage.LAB
            bot.live_approved_by, bot.live_approved_at = None, None
        bot.save()
        after = bot.snapshot()
        audit_record(
            action="bot.update", resource_type="bot", resource_id=bot.id, actor=actor, before=before, after=after
        )
        if before["stage"] != after["stage"]:
            audit_record(
                action="bot.demote",
                resource_type="bot",
                resource_id=bot.id,
                actor=actor,
                before={"stage": before["stage"]},
                after={"stage": after["stage"], "reason": "configuration changed"},
            )
    return bot


def bot_demote(
    *, bot_id: int, actor=None, actor_name: str | None = None, to_stage: str | None = None, reason: str = ""
) -> Bot:
    """Down the ladder (or to RETIRED): always allowed, no gates. The supervisor and the watchdog use it. From LIVE
    it goes through :func:`bots.services.leaving.leave_live`: the venue is cancelled and accounted for."""
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        if bot.stage == Stage.RETIRED:
            raise _illegal(f"Bot {bot.name}", bot.stage, to_stage or "(lower)", "A retired bot stays retired.")
        index = STAGE_ORDER.index(bot.stage)
        requested = to_stage or (STAGE_ORDER[index - 1] if index > 0 else "(none)")
        lower = requested == Stage.RETIRED or (requested in STAGE_ORDER and STAGE_ORDER.index(requested) < index)
        if not lower:
            raise _illegal(f"Bot {bot.name}", bot.stage, requested, "Demotion goes to a lower stage or RETIRED.")
        before = bot.stage
        if before == Stage.LIVE:
            leave_live(bot=bot, to_stage=requested, reason=reason, actor=actor, actor_name=actor_name)
        bot.stage = requested
        bot.live_approved_by, bot.live_approved_at = None, None
        bot.save(update_fields=["stage", "live_approved_by", "live_approved_at", "updated_at"])
        audit_record(
            action="bot.demote",
            resource_type="bot",
            resource_id=bot.id,
            actor=actor,
            actor_name=actor_name,
            before={"stage": before},
            after={"stage": requested, "reason": reason},
        )
    return bot


def starter_pack_install(*, actor) -> tuple[list[Bot], list[Bot]]:
    """Create the starter bots this tenant lacks; (created, already there). Concurrent calls serialize on a
    per-tenant advisory lock, so twice is the same as once."""
    from bots.starter_pack import STARTER_BOTS

    tenant_id = tenancy.require_tenant_id()
    created, existing = [], []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('bots.starter_pack'), %s)", [int(tenant_id)])
        present = {bot.starter_key: bot for bot in Bot.objects.filter(starter_key__in=[s.key for s in STARTER_BOTS])}
        for spec in STARTER_BOTS:
            if spec.key in present:
                existing.append(present[spec.key])
                continue
            name = spec.name if not Bot.objects.filter(name=spec.name).exists() else f"{spec.name} ({spec.key})"
            created.append(
                bot_create(
                    actor=actor,
                    name=name,
                    strategy=spec.strategy,
                    parameters=spec.parameters,
                    instruments=list(spec.instruments),
                    risk_limits=dict(spec.risk_limits),
                    starter_key=spec.key,
                )
            )
        if created:
            audit_record(
                action="bot.starter_pack",
                resource_type="tenant",
                resource_id=tenant_id,
                actor=actor,
                after={"created": [bot.id for bot in created]},
            )
    return created, existing


def bot_set_autonomy_tier(
    *, bot_id: int, tier: str, actor=None, actor_name: str | None = None, evidence: dict | None = None
) -> Bot:
    """Record the tier the autonomy score granted (the gate to LIVE reads it); audited when it changes."""
    if tier not in Bot.AutonomyTier.values:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"tier": [f"One of {Bot.AutonomyTier.values}."]})
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        before = bot.autonomy_tier
        if before != tier:
            bot.autonomy_tier = tier
            bot.save(update_fields=["autonomy_tier", "updated_at"])
            audit_record(
                action="bot.autonomy_tier",
                resource_type="bot",
                resource_id=bot.id,
                actor=actor,
                actor_name=actor_name,
                before={"autonomy_tier": before},
                after={"autonomy_tier": tier, **(evidence or {})},
            )
    return bot
