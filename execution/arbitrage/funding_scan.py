"""The funding scanner's part of a scan (execution.arbitrage.scanner calls these for quote strategies whose
``market_kind`` is ``funding``): what it reads beyond the spot snapshot, and what follows an intent it emitted.

- :func:`funding_snapshot`: the spot snapshot of the bot's instruments plus, in ``extras``, the usable perpetuals
  (book, mark, funding rate; fail closed, ``funding_data.funding_market``), the bot's active funding positions in
  the scan's book (first moved along their intents' fills), and the perpetual venues' taker fees.
- :func:`after_funding_intent`: an entry intent opens a ``FundingPosition``; an exit moves its position to CLOSING.
- :func:`replay_funding_settle`: at the end of a replay, the replay's positions follow their fills and the funding
  times the replay passed are booked, as beat books the live timeline's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bots.strategies import IntentPlan, MarketSnapshot, get_strategy
from bots.strategies.funding import FUNDING_EXTRA, POSITIONS_EXTRA
from execution.arbitrage.funding_data import funding_market, held_positions
from execution.arbitrage.funding_services import (
    FundingBooking,
    book_funding_payments,
    record_funding_intent,
    sync_funding_positions,
)
from execution.marketdata.fees import fee_schedule
from execution.models import TradeIntent


def funding_snapshot(
    bot, spot: MarketSnapshot, *, as_of: datetime, book: str, run_ref: int | None = None
) -> MarketSnapshot:
    sync_funding_positions(bot=bot)
    perps = funding_market(symbols=list(bot.instruments), as_of=as_of)
    fees, sources = fee_schedule({p.venue for p in perps.perps} | {m.venue for m in perps.missing})
    return replace(
        spot,
        taker_fees={**spot.taker_fees, **fees},
        fee_sources={**spot.fee_sources, **sources},
        extras={**spot.extras, FUNDING_EXTRA: perps, POSITIONS_EXTRA: held_positions(bot, book, run_ref)},
    )


def after_funding_intent(
    bot, plan: IntentPlan, intent: TradeIntent, *, book: str, created: bool, run_ref: int | None = None
) -> None:
    """Record what a newly created funding intent means for the bot's positions (a rescan that found the same
    intent again changes nothing)."""
    if not created:
        return
    venues = plan.opportunity.venues
    closing = "close" in venues
    record_funding_intent(
        bot=bot,
        book=book,
        run_ref=run_ref,
        kind="close" if closing else "open",
        intent=intent,
        symbol=plan.opportunity.symbol,
        spot_venue=venues["spot"],
        perp_venue=venues["perp"],
        direction=venues["direction"],
        quantity=plan.legs[0].quantity,
        numbers={
            **{name: str(value) for name, value in plan.opportunity.numbers.items()},
            **({"close": venues["close"]} if closing else {}),
        },
        position_id=int(venues["position"]) if closing else None,
    )


def replay_funding_settle(*, bot, run_ref: int, as_of: datetime) -> FundingBooking | None:
    """For a funding scanner's replay: move its positions along their intents and book the funding times up to
    ``as_of`` (the replay's end) of the positions the replay ``run_ref`` opened. None for other scanners."""
    if get_strategy(bot.strategy).market_kind != "funding":
        return None
    sync_funding_positions(bot=bot, actor_name="replay")
    return book_funding_payments(as_of=as_of, bot=bot, run_ref=run_ref, actor_name="replay")
