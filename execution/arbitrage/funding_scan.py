"""The funding scanner's part of a scan: execution.arbitrage.scanner calls these through its per-market-kind
tables for quote strategies whose ``market_kind`` is ``funding``.

- :func:`funding_market_snapshot` (``SNAPSHOT_BUILDERS``): the spot snapshot of the instruments plus, in
  ``extras``, the usable perpetuals (book, mark, funding rate; fail closed, ``funding_data.funding_market``) and the
  perpetual venues' taker fees. Market data only, so the tenant's bots share it.
- :func:`with_funding_positions` (``BOT_STATE_READERS``): the bot's active funding positions in the scan's book and
  timeline, first moved along their intents' fills.
- :func:`record_funding_scan` (``OPPORTUNITY_RECORDERS``): an entry intent opens a ``FundingPosition``, an exit moves
  its position to CLOSING. The candidates themselves are in the scan's trace; ``arb_spreads`` holds spot pairs.
- :func:`replay_funding_settle`: at the end of a replay, its positions follow their fills and the funding times the
  replay passed are booked, as beat books the live timeline's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bots.strategies import MarketSnapshot, ScanResult, get_strategy
from bots.strategies.funding import FUNDING_EXTRA, POSITIONS_EXTRA
from execution.arbitrage.funding_data import funding_market, held_positions
from execution.arbitrage.funding_services import (
    FundingBooking,
    book_funding_payments,
    record_funding_intent,
    sync_funding_positions,
)
from execution.arbitrage.snapshot import book_for, spot_snapshot
from execution.marketdata.fees import fee_schedule
from execution.models import TradeIntent


def funding_market_snapshot(*, symbols, as_of: datetime) -> MarketSnapshot:
    spot = spot_snapshot(symbols=symbols, as_of=as_of)
    perps = funding_market(symbols=sorted(symbols), as_of=as_of)
    fees, sources = fee_schedule({p.venue for p in perps.perps} | {m.venue for m in perps.missing})
    return replace(
        spot,
        taker_fees={**spot.taker_fees, **fees},
        fee_sources={**spot.fee_sources, **sources},
        extras={**spot.extras, FUNDING_EXTRA: perps},
    )


def with_funding_positions(bot, market: MarketSnapshot, *, book: str, run_ref: int | None) -> MarketSnapshot:
    sync_funding_positions(bot=bot)
    return replace(market, extras={**market.extras, POSITIONS_EXTRA: held_positions(bot, book, run_ref)})


def record_funding_scan(
    bot, ctx, result: ScanResult, market: MarketSnapshot, *, intent_id, totals, already=None, refused=None
) -> None:
    """After the scan's intent was submitted (``intent_id``), what it means for the bot's positions. Nothing when
    no intent was sent (no plan, already acted in this window, refused by risk: the trace says which)."""
    plan = result.plan
    if plan is None or intent_id is None:
        return
    venues = plan.opportunity.venues
    closing = "close" in venues
    record_funding_intent(
        bot=bot,
        book=book_for(bot.stage, replay=ctx.replay),
        run_ref=ctx.run_ref,
        kind="close" if closing else "open",
        intent=TradeIntent.objects.get(pk=intent_id),
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
