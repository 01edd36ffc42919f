"""Reads of positions and PnL: marks, the PnL endpoint, and the drawdown breaker's equity (the tick reads its
positions with the risk state, execution.risk_state.risk_snapshot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from execution.models import Bar, Instrument, StrategyPosition
from execution.pnl import PositionState
from execution.timeframes import Timeframe, timeframe_delta
from traces.models import ProfitVariables


@dataclass(frozen=True)
class Mark:
    price: Decimal
    bar_ts: datetime  # the bar's open time
    timeframe: str


def latest_mark(instrument: Instrument, *, as_of: datetime | None = None) -> Mark | None:
    """The close of the latest complete bar of any timeframe, or None: no bar, no price (never a made-up one).

    One statement whatever the history's size: per timeframe, the latest bar complete at ``as_of`` (one backward
    step on the (instrument, timeframe, ts) unique index), all timeframes in one UNION ALL; the bar that closed
    last wins, a tie going to the first timeframe by name. ``order_by`` is explicit because Bar's default ordering
    would otherwise be added to the query (it once turned a DISTINCT over timeframes into one row per bar).
    This is the one mark of PnL, the drawdown breaker (``bot_equity``) and reconcile resolution."""
    as_of = as_of or timezone.now()
    latest = [Bar.objects.filter(instrument=instrument, timeframe=timeframe, ts__lte=as_of - timeframe_delta(timeframe))
              .order_by("-ts").values_list("timeframe", "ts", "close")[:1] for timeframe in Timeframe.values]
    rows = latest[0].union(*latest[1:], all=True)
    best = min(rows, key=lambda row: (-(row[1] + timeframe_delta(row[0])).timestamp(), row[0]), default=None)
    return None if best is None else Mark(best[2], best[1], best[0])


def bot_pnl(*, bot, as_of: datetime | None = None) -> dict:
    """Realized and unrealized PnL per instrument and in total. Unrealized is null when any open position has no
    bar to mark it with: an unknown is not a zero."""
    positions = list(StrategyPosition.objects.filter(bot=bot).select_related("instrument").order_by("instrument__symbol"))
    rows, realized, fees, unrealized = [], Decimal(0), Decimal(0), Decimal(0)
    unknown = False
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
        rows.append({
            "instrument": position.instrument.symbol, "quantity": str(position.quantity),
            "average_price": str(position.average_price), "realized_pnl": str(position.realized_pnl),
            "fees": str(position.fees), "mark": str(mark.price) if mark else None,
            "mark_bar_ts": mark.bar_ts.isoformat() if mark else None,
            "unrealized_pnl": None if open_pnl is None else str(open_pnl),
        })
    days = [
        {"day": row.day.isoformat(), "pnl": str(row.pnl), "fees": str(row.fees), "slippage": str(row.slippage),
         "turnover": str(row.turnover), "exposure": str(row.exposure), "fills": row.fills,
         "closing_trades": row.closing_trades, "win_rate": row.win_rate}
        for row in ProfitVariables.objects.filter(bot_id=bot.id).order_by("-day")[:90]
    ]
    return {
        "bot_id": bot.id, "realized_pnl": str(realized), "fees": str(fees),
        "unrealized_pnl": None if unknown else str(unrealized),
        "total_pnl": None if unknown else str(realized + unrealized),
        "positions": rows, "days": days,
    }


@dataclass(frozen=True)
class Equity:
    """A bot's PnL equity at ``as_of``: realized (after fees) plus unrealized at the marks. ``unmarked`` lists the
    open positions no bar could mark; while it is not empty there is no equity (``total`` is None), not a guess."""

    realized: Decimal
    unrealized: Decimal | None
    marks: dict[str, dict]
    unmarked: tuple[str, ...]

    @property
    def total(self) -> Decimal | None:
        return None if self.unrealized is None else self.realized + self.unrealized


def bot_equity(*, bot_id: int, as_of: datetime | None = None,
               marks_cache: dict[int, Mark | None] | None = None) -> Equity:
    """Realized PnL of every position plus each open position marked at its instrument's latest complete bar.

    ``marks_cache`` (instrument id → mark, for this same ``as_of``) lets a sweep over many bots read each
    instrument's mark once."""
    as_of = as_of or timezone.now()
    marks_cache = {} if marks_cache is None else marks_cache
    realized, unrealized = Decimal(0), Decimal(0)
    marks: dict[str, dict] = {}
    unmarked: list[str] = []
    for position in StrategyPosition.objects.filter(bot_id=bot_id).select_related("instrument"):
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
        state = PositionState(position.quantity, position.average_price, position.realized_pnl, position.fees)
        open_pnl = state.unrealized_pnl(mark.price, position.instrument.multiplier)
        unrealized += open_pnl
        marks[symbol] = {"quantity": str(position.quantity), "average_price": str(position.average_price),
                         "mark": str(mark.price), "bar_ts": mark.bar_ts.isoformat(), "timeframe": mark.timeframe,
                         "unrealized_pnl": str(open_pnl)}
    return Equity(realized, None if unmarked else unrealized, marks, tuple(sorted(unmarked)))
