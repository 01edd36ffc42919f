"""The bot page's actions: each calls the same service as its API endpoint, after the same role check, and needs
the operator's confirmation; the outcome (or the error's code, fix and trace id) comes back on the page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.contrib import messages
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse

from bots import services
from bots.models import Bot, Stage
from bots.selectors import active_runner
from bots.services import PositionsDecision
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Membership
from controlplane.stepup import require_step_up
from controlplane.twofactor import CODE_LABEL
from controlplane.trace import current_trace_id
from execution.risk.services import trading_state_set
from oversight.promotion import bot_promote_by_request, next_stage
from oversight.rearm import bot_rearm
from oversight.reconcile import bot_reconcile
from observatory.roles import require_console_role


def _stop(request, bot: Bot, user, reason: str, data) -> str:
    runner = active_runner(bot.id)
    if runner is None:
        raise ControlPlaneError(
            ErrorCode.ILLEGAL_TRANSITION, "The bot has no active runner to stop.", suggested_fix="Start a runner first."
        )
    services.runner_stop(runner_id=runner.id, actor=user, reason=reason)
    return f"runner {runner.id} stopped"


def _unkill(request, bot: Bot, user, reason: str, data) -> str:
    decision = data.get("positions_decision") or None
    if decision is not None and decision not in PositionsDecision.CHOICES:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            f"positions_decision must be one of {', '.join(PositionsDecision.CHOICES)}.",
            details={"positions_decision": decision},
        )
    require_step_up(request, action=f"Unkilling bot {bot.name}", code=data.get("otp_token", ""))
    bot_rearm(bot_id=bot.id, actor=user, reason=reason, positions_decision=decision)
    return "unkilled"


def _promote(request, bot: Bot, user, reason: str, data) -> str:
    code = data.get("otp_token", "")
    return f"promoted to {bot_promote_by_request(request, bot_id=bot.id, code=code).stage}"


def _trading_state(request, bot: Bot, user, reason: str, data) -> str:
    return trading_state_set(bot_id=bot.id, state=data.get("state", ""), reason=reason, actor=user).state


@dataclass(frozen=True)
class Action:
    label: str
    role: str
    needs_reason: bool
    run: Callable[[object, Bot, object, str, dict], str]  # (request, bot, user, reason, posted data)
    danger: bool = False
    help: str = ""
    # Whether the confirmation asks for a second factor (controlplane.stepup) for this bot.
    needs_code: Callable[[Bot], bool] = lambda bot: False


ACTIONS: dict[str, Action] = {
    "start": Action(
        "Start a runner",
        Membership.Role.OPERATOR,
        False,
        lambda request, bot, user, reason, data: (
            f"runner {services.runner_start(bot_id=bot.id, actor=user).id} started"
        ),
        help="Runs the safe-start checks.",
    ),
    "stop": Action("Stop the runner", Membership.Role.OPERATOR, True, _stop),
    "promote": Action(
        "Promote",
        Membership.Role.OPERATOR,
        False,
        _promote,
        help="To the next stage; its gates are checked.",
        needs_code=lambda bot: next_stage(bot.stage) == Stage.LIVE,
    ),
    "demote": Action(
        "Demote",
        Membership.Role.OPERATOR,
        True,
        lambda request, bot, user, reason, data: (
            f"demoted to {services.bot_demote(bot_id=bot.id, actor=user, reason=reason).stage}"
        ),
    ),
    "kill": Action(
        "Kill",
        Membership.Role.OPERATOR,
        True,
        lambda request, bot, user, reason, data: (
            services.bot_kill(bot_id=bot.id, actor=user, reason=reason),
            "killed; open orders are being cancelled",
        )[1],
        danger=True,
        help="Latched: only an owner can unkill.",
    ),
    "unkill": Action(
        "Unkill",
        Membership.Role.OWNER,
        True,
        _unkill,
        help="Needs a flat, matching reconcile after the kill, or a decision about the positions, and a second factor.",
        needs_code=lambda bot: True,
    ),
    "trading_state": Action(
        "Set the trading state",
        Membership.Role.OPERATOR,
        True,
        _trading_state,
        help="ACTIVE trades; REDUCE_ONLY only lets orders that shrink exposure pass; HALTED "
        "refuses every order. Read on the next risk check.",
    ),
    "reconcile": Action(
        "Reconcile",
        Membership.Role.OPERATOR,
        False,
        lambda request, bot, user, reason, data: f"reconcile {bot_reconcile(bot_id=bot.id, actor=user).status}",
        help="Compares the bot's positions with the venue's.",
    ),
}


def offered_actions(bot: Bot) -> list[dict]:
    """The actions that make sense in the bot's state; the services still decide."""
    shown = ["start", "stop", "promote", "demote", "unkill" if bot.killed else "kill", "trading_state", "reconcile"]
    return [
        {"name": name, "action": ACTIONS[name], "needs_code": ACTIONS[name].needs_code(bot), "code_label": CODE_LABEL}
        for name in shown
    ]


def bot_action(request, bot_id: int, action: str):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    spec = ACTIONS.get(action)
    bot = Bot.objects.filter(pk=bot_id).first()
    if spec is None or bot is None:
        raise Http404("No such bot or action.")
    require_console_role(request, spec.role)
    back = reverse("admin:bots_bot_change", args=[bot.id])
    reason = request.POST.get("reason", "").strip()
    if request.POST.get("confirm") != "yes":
        messages.error(request, f"{spec.label}: not confirmed; nothing was done.")
        return redirect(back)
    if spec.needs_reason and not reason:
        error = ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            f"{spec.label} needs a reason.",
            suggested_fix="Write why in the reason field.",
            details={"reason": "required"},
        )
        messages.error(
            request,
            f"{spec.label} refused: {error.code}: {error.message} Fix: {error.suggested_fix} "
            f"(trace {current_trace_id()})",
            extra_tags=f"action-{action} refused",
        )
        return redirect(back)
    try:
        outcome = spec.run(request, bot, request.user, reason, request.POST)
    except ControlPlaneError as exc:
        messages.error(
            request,
            f"{spec.label} refused: {exc.code}: {exc.message} Fix: {exc.suggested_fix} (trace {current_trace_id()})",
            extra_tags=f"action-{action} refused",
        )
    else:
        messages.success(
            request, f"{spec.label}: {outcome} (trace {current_trace_id()}).", extra_tags=f"action-{action} done"
        )
    return redirect(back)
