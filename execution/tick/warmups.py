"""The warm-up a batch of bots needs read (``execution.tick.batches``): the most any bot's strategy claims, capped."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings

from bots.strategies import get_strategy
from controlplane.errors import ControlPlaneError, ErrorCode
from execution.tick.decide import TickBot

logger = logging.getLogger(__name__)


def batch_warmups(bots: Iterable[TickBot]) -> tuple[int, dict[int, int]]:
    """Bars the batch must read (the most any of its bots needs, at most TICK_MAX_WARMUP_BARS) and the bots whose
    strategy claims more than that cap, with their claims. A bot whose configuration cannot even say (corrupt
    parameters), or claims past the cap, does not stop the others; its own decision fails and is traced as
    TICK_ERROR."""
    cap = settings.TICK_MAX_WARMUP_BARS
    needed, too_long = 1, {}
    claims: dict[tuple[str, int], int | None] = {}  # by strategy and parameters object: bots configured alike share it
    for bot in bots:
        key = (bot.strategy, id(bot.parameters))
        if key in claims:
            claimed = claims[key]
        else:
            try:
                claimed = get_strategy(bot.strategy).warmup_bars(bot.parameters)
            except Exception:
                claimed = None
            claims[key] = claimed
        if claimed is None:
            logger.warning("bot's strategy cannot say its warmup", extra={"bot_id": bot.id})
            continue
        if claimed > cap:
            too_long[bot.id] = claimed
        elif claimed > needed:
            needed = claimed
    return needed, too_long


def batch_warmup(bots: Iterable[TickBot]) -> int:
    """Bars the batch must read for ``bots``: see ``batch_warmups``."""
    return batch_warmups(bots)[0]


def warmup_too_long(claimed: int) -> ControlPlaneError:
    cap = settings.TICK_MAX_WARMUP_BARS
    return ControlPlaneError(
        ErrorCode.VALIDATION_ERROR,
        f"The strategy's warm-up ({claimed} bars) is more than a tick reads (TICK_MAX_WARMUP_BARS = {cap}).",
        suggested_fix="Fix the bot's parameters through the API (they are validated there).",
        details={"warmup_bars": str(claimed), "max_warmup_bars": cap},
    )
