"""Promotion: one step up the stage ladder when every gate of the new stage passes (oversight.gates).

Demotion needs no judgement and stays with the bot (bots.services.bot_demote)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from bots.models import STAGE_ORDER, Bot, Stage
from bots.services.common import _illegal, _locked_bot
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.stepup import require_step_up
from oversight.gates import promotion_gates


def next_stage(stage: str) -> str | None:
    if stage not in STAGE_ORDER:
        return None
    index = STAGE_ORDER.index(stage)
    return STAGE_ORDER[index + 1] if index + 1 < len(STAGE_ORDER) else None


def bot_promote(*, bot_id: int, actor, to_stage: str | None = None) -> Bot:
    """One step up the ladder, if every gate of the new stage passes."""
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        following = next_stage(bot.stage)
        requested = to_stage or following or "(none)"
        if following is None or requested != following:
            why = f"The next stage is {following}." if following else "There is no stage above it."
            raise _illegal(f"Bot {bot.name}", bot.stage, requested, why)
        results = promotion_gates(bot, requested, actor=actor)
        failing = [gate.as_dict() for gate in results if not gate.passed]
        if failing:
            raise ControlPlaneError(
                ErrorCode.PROMOTION_GATE_FAILED,
                f"Bot {bot.name} cannot be promoted to {requested}: "
                + "; ".join(f"{gate['gate']}: {gate['message']}" for gate in failing),
                suggested_fix=failing[0]["suggested_fix"],
                details={"current": bot.stage, "requested": requested, "gates": failing},
            )
        before = bot.stage
        bot.stage = requested
        update_fields = ["stage", "updated_at"]
        if requested == Stage.LIVE:
            bot.live_approved_by, bot.live_approved_at = actor, timezone.now()
            update_fields += ["live_approved_by", "live_approved_at"]
        bot.save(update_fields=update_fields)
        audit_record(
            action="bot.promote",
            resource_type="bot",
            resource_id=bot.id,
            actor=actor,
            before={"stage": before},
            after={"stage": requested, "gates": [gate.as_dict() for gate in results]},
        )
    return bot


def bot_promote_by_request(request, *, bot_id: int, to_stage: str | None = None, code: str | None = None) -> Bot:
    """A person's promotion (API or console): to LIVE it needs a fresh second factor (controlplane.stepup; ``code``
    is the console's "Authenticator code" field, the API sends X-OTP-Token). The stage asked for is pinned, so a
    bot promoted meanwhile by someone else is refused rather than carried to LIVE without the check."""
    bot = Bot.objects.get(pk=bot_id)
    target = to_stage or next_stage(bot.stage)
    if target == Stage.LIVE == next_stage(bot.stage):  # a skip to LIVE is refused as illegal, step-up or not
        require_step_up(request, action=f"Promoting bot {bot.name} to LIVE", code=code)
    return bot_promote(bot_id=bot_id, actor=request.user, to_stage=target)
