"""The bot page's "what this scanner needs" panel (quote-strategy bots only): the gates of its next stage as
promotion would judge them now (oversight.gates), its latest quote replay's measured numbers against each
threshold (oversight.scanner_evidence), and its paper parity against that replay, or why it is unknown."""

from __future__ import annotations

from django.conf import settings

from bots.models import Bot
from bots.strategies import get_strategy, is_quote_strategy
from oversight.gates import promotion_gates
from oversight.promotion import next_stage
from oversight.scanner_evidence import quote_replay_judgement, scanner_paper_parity


def is_quote_bot(bot: Bot) -> bool:
    try:
        return is_quote_strategy(get_strategy(bot.strategy))
    except KeyError:
        return False


def scanner_gates_panel(bot: Bot, actor=None) -> dict:
    """``actor``: the person reading the page (the owner-approval gate is judged for them)."""
    following = next_stage(bot.stage)
    gates = [gate.as_dict() for gate in promotion_gates(bot, following, actor=actor)] if following else []
    judged = quote_replay_judgement(bot)
    return {
        "scanner": True,
        "next_stage": following,
        "gates": gates,
        "gates_passed": sum(1 for gate in gates if gate["passed"]),
        "replay": {
            "passed": judged.passed,
            "message": judged.message,
            "fix": judged.suggested_fix,
            "evidence": judged.evidence,
            "checks": judged.checks,
            "required": judged.required,
        },
        "parity": scanner_paper_parity(bot),
        "parity_required": {"T2": settings.AUTONOMY_T2_MIN_PARITY, "T3": settings.AUTONOMY_T3_MIN_PARITY},
    }
