"""Reads of positions and PnL: marks, the PnL endpoint, and the drawdown breaker's equity (the tick reads its
positions with the risk state, execution.risk.state.risk_snapshot).

Everything here reads one book (``controlplane.books``): a bot's paper PnL and its live PnL are two answers, never
a sum. A mark older than its timeframe's freshness limit (``execution.marketdata.selectors.bar_staleness``, the tick's own
rule) is still reported, with its bar and ``stale: true``; the drawdown breaker does not trade on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from bots.timeframes import Timeframe, timeframe_delta
from execution.marketdata.selectors import bar_staleness
from execution.models import Bar, Instrument, StrategyPosition
from execution.risk.pnl import PositionState
from traces.models import ProfitVariables


@dataclass(frozen=True)
class Mark:
    """A price to mark a position at: the close of a complete bar. ``stale`` says the bar is older than its
    timeframe's freshness limit at the ``as_of`` it was read for (``staleness`` holds the values that decided)."""

    price: Decimal
    bar_ts: datetime  # the bar's open time
    timeframe: str
    stale: bool = field(default=False, compare=False)
    staleness: dict = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {
            "mark": str(self.price),
            "bar_ts": self.bar_ts.isoformat(),
            "timeframe": self.timeframe,
            "stale": self.stale,
        }


def latest_mark(instrument: Instrument, *, as_of: datetime | None = None) -> Mark | None:
    """The close of the latest complete bar of any timeframe, or None: no bar, no price (never a made-up one).

    One statement whatever the history's size: per timeframe, the latest bar complete at ``as_of`` (one backward
    step on the (instrument, timeframe, ts) unique index), all timeframes in one UNION ALL; the bar that closed
    last wins, a tie going to the first timeframe by name. ``order_by`` is explicit because Bar's default ordering
    would otherwise be added to the query (it once turned a DISTINCT over timeframes into one row per bar).
    This is the one mark of PnL, the drawdown breaker (``bot_equity``) and reconcile resolution."""
    as_of = as_of or timezone.now()
    latest = [
        Bar.objects.filter(instrument=instrument, timeframe=timeframe, ts__lte=as_of - timeframe_delta(timeframe))
        .order_by("-ts")
        .values_list("timeframe", "ts", "close")[:1]
        for timeframe in Timeframe.values
    ]
    rows = latest[0].union(*latest[1:], all=True)
    best = min(rows, key=lambda row: (-(row[1] + timeframe_delta(row[0])).timestamp(), row[0]), default=None)
    if best is None:
        return None
    stale, staleness = bar_staleness(instrument=instrument, timeframe=best[0], bar_ts=best[1], as_of=as_of)
    return Mark(best[2], best[1], best[0], stale=stale, staleness=staleness)


def bot_pnl(*, bot, book: str, as_of: datetime | None = None) -> dict:
    """Realized and unrealized PnL of one book per instrument and in total. Unrealized is null when any open
    position has no bar to mark it with: an unknown is not a zero. A stale mark is used and flagged (the row's
    ``mark_stale``, and ``stale_marks`` naming the instruments): the number is an estimate, not a fact."""
    as_of = as_of or timezone.now()
    positions = list(
        StrategyPosition.objects.filter(bot=bot, book=book).select_related("instrument").order_by("instrument__symbol")
    )
    rows, realized, fees, unrealized = [], Decimal(0), Decimal(0), Decimal(0)
    unknown = False
    stale_marks: list[str] = []
    for position in positions:
        state = PositionState(position.quantity, position.average_price, position.realized_pnl, position.fees)
        mark = latest_mark(position.instrument, as_of=as_of) if position.quantity != 0 else None
        if position.quantity == 0:
            open_pnl: Decimal | None = Decimal(0)
        elif mark is None:
            open_pnl, unknown = None, True
        else:
            open_pnl = state.unrealized_pnl(mark.price, position.instrument.multiplier)
        realized += position.realized_pnl
        fees += position.fees
        if open_pnl is not None:
            unrealized += open_pnl
        if mark is not None and mark.stale:
            stale_marks.append(position.instrument.symbol)
        rows.append(
            {
                "instrument": position.instrument.symbol,
                "book": position.book,
                "quantity": str(position.quantity),
                "average_price": str(position.average_price),
                "realized_pnl": str(position.realized_pnl),
                "fees": str(position.fees),
                "mark": str(mark.price) if mark else None,
                "mark_bar_ts": mark.bar_ts.isoformat() if mark else None,
                "mark_timeframe": mark.timeframe if mark else None,
                "mark_stale": mark.stale if mark else None,
                "unrealized_pnl": None if open_pnl is None else str(open_pnl),
            }
        )
    days = [
        {
            "day": row.day.isoformat(),
            "pnl": str(row.pnl),
            "fees": str(row.fees),
            "slippage": str(row.slippage),
            "turnover": str(row.turnover),
            "exposure": str(row.exposure),
            "fills": row.fills,
            "closing_trades": row.closing_trades,
            "win_rate": row.win_rate,
        }
        for row in ProfitVariables.objects.filter(bot_id=bot.id, book=book).order_by("-day")[:90]
    ]
    return {
        "bot_id": bot.id,
        "book": str(book),
        "marked_at": as_of.isoformat(),
        "realized_pnl": str(realized),
        "fees": str(fees),
        "unrealized_pnl": None if unknown else str(unrealized),
        "total_pnl": None if unknown else str(realized + unrealized),
        "stale": bool(stale_marks),
        "stale_marks": stale_marks,
        "positions": rows,
        "days": days,
    }


@dataclass(frozen=True)
class Equity:
    """A bot's PnL equity in one book at ``as_of``: realized (after fees) plus unrealized at the marks.
    ``unmarked`` lists the open positions no bar could mark; while it is not empty there is no equity (``total``
    is None), not a guess. ``stale`` lists those marked at a stale bar: ``total`` is then an estimate, which the
    drawdown breaker neither trips nor passes on."""

    realized: Decimal
    unrealized: Decimal | None
    marks: dict[str, dict]
    unmarked: tuple[str, ...]
    stale: tuple[str, ...] = ()

    @property
    def total(self) -> Decimal | None:
        return None if self.unrealized is None else self.realized + self.unrealized


def bot_equity(
    *, bot_id: int, book: str, as_of: datetime | None = None, marks_cache: dict[int, Mark | None] | None = None
) -> Equity:
    """Realized PnL of every position of ``book`` plus each open one marked at its instrument's latest complete bar.

    ``marks_cache`` (instrument id → mark, for this same ``as_of``) lets a sweep over many bots read each
    instrument's mark once."""
    as_of = as_of or timezone.now()
    marks_cache = {} if marks_cache is None else marks_cache
    realized, unrealized = Decimal(0), Decimal(0)
    marks: dict[str, dict] = {}
    unmarked: list[str] = []
    stale: list[str] = []
    for position in StrategyPosition.objects.filter(bot_id=bot_id, book=book).select_related("instrument"):
        realized += position.realized_pnl
        if position.quantity == 0:
            continue
        symbol = position.instrument.symbol
        if position.instrument_id not in marks_cache:
            marks_cache[position.instrument_id] = latest_mark(position.instrument, as_of=as_of)
        mark = marks_cache[position.instrument_id]
        if mark is None:
            unmarked.append(symbol)
            continue
        if mark.stale:
            stale.append(symbol)
        state = PositionState(position.quantity, position.average_price, position.realized_pnl, position.fees)
        open_pnl = state.unrealized_pnl(mark.price, position.instrument.multiplier)
        unrealized += open_pnl
        marks[symbol] = {
            "quantity": str(position.quantity),
            "average_price": str(position.average_price),
            **mark.as_dict(),
            "unrealized_pnl": str(open_pnl),
        }
    return Equity(realized, None if unmarked else unrealized, marks, tuple(sorted(unmarked)), tuple(sorted(stale)))
