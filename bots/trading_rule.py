"""The one rule for whether a bot may send orders now, as a pure function of the facts.

The tick reads the facts in bulk for a whole batch (one statement) and the intent and OMS path reads them for one
bot (``bots.selectors.trading_block``); both ask this function, so the two can never disagree on what blocks a bot
or on which block is named first.
"""

from __future__ import annotations

from bots.models import Stage
from controlplane.errors import ErrorCode

# Which kill switch a kill code names; the tick's KILLED traces carry it as ``level``.
KILL_LEVELS: dict[ErrorCode, str] = {
    ErrorCode.SYSTEM_KILLED: "system",
    ErrorCode.TENANT_KILLED: "tenant",
    ErrorCode.BOT_KILLED: "bot",
}


def kill_block_reason(*, system_killed: bool, tenant_killed: bool, bot_killed: bool) -> ErrorCode | None:
    """The kill switch that stops the bot, most global first (the widest kill is the one to lift first), or None.
    Asked alone where only kills matter: a retired bot may still close what it left at its venue."""
    if system_killed:
        return ErrorCode.SYSTEM_KILLED
    if tenant_killed:
        return ErrorCode.TENANT_KILLED
    if bot_killed:
        return ErrorCode.BOT_KILLED
    return None


def trading_block_reason(
    *, system_killed: bool, tenant_killed: bool, bot_killed: bool, stage: str, reconcile_mismatch: bool
) -> ErrorCode | None:
    """Why the bot may not send orders, or None. A retired bot is named first (nothing brings it back); then the
    kill switches; then an unresolved reconcile mismatch, which an operator resolves bot by bot."""
    if stage == Stage.RETIRED:
        return ErrorCode.BOT_RETIRED
    kill = kill_block_reason(system_killed=system_killed, tenant_killed=tenant_killed, bot_killed=bot_killed)
    if kill is not None:
        return kill
    if reconcile_mismatch:
        return ErrorCode.RECONCILE_MISMATCH
    return None
