"""Where a bot's orders go at a stage (venue and book) and whether the integrations that venue and its data source
need are ready. Not a judgement of the bot: the tick, the risk engine, the runner's safe start and the promotion
gates all ask the same question, so the answer lives here, below all of them."""

from __future__ import annotations

from bots.models import SIM_VENUE, Bot, Stage
from controlplane.books import Book, book_for_venue
from controlplane.errors import ControlPlaneError
from integrations.safe_start import refusal_code, safe_start_blockers


def order_venue(bot: Bot, *, stage: str | None = None) -> str:
    """Where the bot's orders go at ``stage``: its configured venue only when LIVE; every other stage paper-trades
    on the sim venue (real bars, simulated fills), so it needs no broker key."""
    return bot.venue if (stage or bot.stage) == Stage.LIVE else SIM_VENUE


def order_book(bot: Bot, *, stage: str | None = None) -> Book:
    """The book the bot's orders at ``stage`` fill into, and so the one its risk checks, sizing, PnL and drawdown
    read: live only when LIVE on a real venue (controlplane.books)."""
    return book_for_venue(order_venue(bot, stage=stage))


def integration_blockers(bot: Bot, *, stage: str | None = None) -> list[dict]:
    """What keeps the bot's order venue and data source from being usable at ``stage``: the one call into the
    integrations gate. A bot on the sim venue and imported bars needs no provider at all."""
    stage = stage or bot.stage
    return safe_start_blockers(venue=order_venue(bot, stage=stage), data_source=bot.data_source, stage=stage)


def raise_if_integrations_blocked(bot: Bot, *, stage: str | None = None) -> None:
    blockers = integration_blockers(bot, stage=stage)
    if blockers:
        providers = ", ".join(b["provider"] for b in blockers)
        raise ControlPlaneError(
            refusal_code(blockers),
            f"Bot {bot.name} cannot run: its integrations are not ready ({providers}).",
            suggested_fix=blockers[0]["suggested_fix"],
            details={"blockers": blockers},
        )
