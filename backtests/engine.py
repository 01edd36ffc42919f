"""The backtest engine: the live tick's decisions, replayed over stored bars. Pure: no database, clock or randomness.

Two paths give the same orders and fills:

- :func:`run_reference`, bar by bar, exactly as a live tick would: after bar *i* closes the strategy's ``decide``
  sees the bars up to *i* (the last ``warmup_bars``) and the current position; the order is target − position; it
  fills through ``execution.fill_model.simulate_fill`` on bar *i+1* (``next_open``) or at bar *i*'s close (``close``),
  and ``execution.risk.pnl.PositionState`` books it. An unfilled remainder (volume cap) is not carried: the next
  decision orders target − position again, as a fresh tick would.
- :func:`run_vectorized`, numpy over the whole series, for strategies that declare ``vectorized_targets`` and fill
  models where every market order fills completely (no volume cap) on a tick grid of 1/m (0.25, 0.01, ...). Fill
  prices replicate ``simulate_fill``'s decimal rounding exactly (see :func:`_round_to_grid`).

Both hand their fills to :func:`_account`, which marks the position at each bar's close and cuts round trips.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from bots.strategies import Bars, Strategy
from bots.strategies.windows import BarsWindow, SeriesWindows
from execution.fill_model import FillAt, FillBar, FillModel, OrderType, Side, SimOrder, simulate_fill
from execution.risk.pnl import PositionState

from .round_trips import round_trips

NO_SIGNAL = "NO_SIGNAL"
ALREADY_AT_TARGET = "ALREADY_AT_TARGET"
NO_FILL = "NO_FILL"  # an order whose fill bar is outside the range (the last bar's decision) or volume is zero


@dataclass(frozen=True, slots=True)
class Fill:
    decided_at: int  # bar index of the decision
    filled_at: int  # bar index of the fill (decided_at + 1 for next_open, decided_at for close)
    side: int  # +1 buy, -1 sell
    quantity: float
    price: float
    fee: float
    slippage: float


FILL_COLUMNS = ("decided_at", "filled_at", "side", "quantity", "price", "fee", "slippage")


def _columns(fills: list[Fill]) -> dict[str, np.ndarray]:
    return {
        name: np.array(
            [getattr(f, name) for f in fills],
            dtype=np.int64 if name in ("decided_at", "filled_at", "side") else np.float64,
        )
        for name in FILL_COLUMNS
    }


@dataclass
class EngineResult:
    fill_columns: dict  # FILL_COLUMNS -> numpy arrays, one entry per fill
    position: np.ndarray  # after each bar (fills of that bar included)
    equity: np.ndarray  # marked at each bar's close
    trades: list[dict]  # round trips: entry/exit bar index, side, quantity, prices, pnl (net of fees), fees
    orders: list[int]  # bar indices where an order was sent (decisions that traded)
    no_trade: Counter  # reason code -> bars, over the bars where no order was sent
    no_trade_by_bar: np.ndarray | None = None  # per bar: 0 traded, 1 NO_SIGNAL, 2 ALREADY_AT_TARGET
    path: str = "reference"
    unfilled: list[int] = field(default_factory=list)

    @property
    def fills(self) -> list[Fill]:
        cols = self.fill_columns
        return [
            Fill(int(d), int(f), int(s), float(q), float(p), float(c), float(sl))
            for d, f, s, q, p, c, sl in zip(*(cols[name] for name in FILL_COLUMNS))
        ]


def _fill_bar(bars: Bars, i: int) -> FillBar:
    return FillBar(
        float(bars.open[i]), float(bars.high[i]), float(bars.low[i]), float(bars.close[i]), float(bars.volume[i])
    )


def run_reference(
    strategy: Strategy,
    params: dict,
    bars: Bars,
    *,
    model: FillModel,
    tick_size: Decimal,
    multiplier: Decimal,
    capital: float,
    progress=None,
    progress_every: int = 5000,
) -> EngineResult:
    """Bar by bar, as the live tick. ``progress(done)`` is called every ``progress_every`` bars (it may raise to
    stop the run).

    Per bar the only work is the strategy's own: a bar before the warm-up is NO_SIGNAL without a call (``decide``
    would answer INSUFFICIENT_HISTORY); a strategy with a reference form (:func:`reference_form`) has its target
    read by index from the form's array for the position's side; any other calls ``_decide`` on a lazily sliced
    window of exactly ``warmup_bars`` bars (what ``decide`` would pass it). "Already at target" is a float
    comparison with the position, and the float must spell the decimal position (checked once per fill): a fill may
    leave digits a float drops, and then the order for them goes out as ``decide`` bar by bar would send it. A
    strategy that overrides ``decide`` itself gets ``decide`` with the window ``[i + 1 - warmup, i]``, as before.
    """
    n = len(bars)
    warmup = strategy.warmup_bars(params)
    own_decide = type(strategy).decide is not Strategy.decide
    decide = strategy.decide if own_decide else strategy._decide
    first = 0 if own_decide else max(warmup - 1, 0)
    form = None if own_decide else reference_form(strategy, params, bars)
    state = PositionState()
    position = 0.0  # float(state.quantity), refreshed after each fill
    exact = True  # Decimal(repr(position)) == state.quantity: the float spells the position (a fill may leave more)
    roots = SeriesWindows(bars).roots
    fills: list[Fill] = []
    orders: list[int] = []
    unfilled: list[int] = []
    reasons = bytearray(n)  # 0 traded, 1 NO_SIGNAL, 2 ALREADY_AT_TARGET (as np.int8 at the end)
    reasons[:first] = b"\x01" * min(first, n)  # a slice assignment of another length would resize it
    pending: tuple[int, SimOrder] | None = None
    at_close = model.fill_at is FillAt.CLOSE
    step = max(int(progress_every), 1) if progress is not None else max(n, 1)
    flat = long = short = ()  # the form's targets over the current block, as Python floats

    def fill(decided: int, at: int, order: SimOrder) -> None:
        nonlocal state, position, exact
        state = _book(
            fills,
            state,
            decided,
            at,
            order,
            simulate_fill(order, _fill_bar(bars, at), model=model, tick_size=tick_size, multiplier=multiplier),
            multiplier,
            unfilled,
        )
        position = float(state.quantity)
        exact = Decimal(repr(position)) == state.quantity

    for chunk in range(0, n, step):
        if progress is not None and chunk:
            progress(chunk)
        end = min(chunk + step, n)
        for lo in range(max(chunk, first), end, _FORM_BLOCK):
            hi = min(lo + _FORM_BLOCK, end)
            if form is not None:
                flat, long, short = _form_block(form, lo, hi)
            for i in range(lo, hi):
                if pending is not None:  # next_open: the order decided on bar i-1 fills on this bar's open
                    fill(pending[0], i, pending[1])
                    pending = None
                if form is None:
                    start = i + 1 - warmup
                    target = decide(params, BarsWindow(roots, start if start > 0 else 0, i + 1), position).target
                    if target is None:
                        reasons[i] = 1
                        continue
                else:
                    target = (flat if position == 0.0 else long if position > 0.0 else short)[i - lo]
                    if target != target:  # NaN: the strategy holds (its target is the position it was given)
                        target = position
                if target == position and exact:  # equal floats are equal decimals only where the float is exact
                    reasons[i] = 2
                    continue
                delta = Decimal(repr(target)) - state.quantity
                orders.append(i)
                order = SimOrder(Side.BUY if delta > 0 else Side.SELL, abs(delta), OrderType.MARKET)
                if at_close:
                    fill(i, i, order)
                elif i + 1 < n:
                    pending = (i, order)
                else:
                    unfilled.append(i)
    columns = _columns(fills)
    return _account(
        bars,
        columns,
        _held(columns, n),
        orders,
        np.frombuffer(reasons, dtype=np.int8).copy(),
        capital=capital,
        multiplier=float(multiplier),
        path="reference",
        unfilled=unfilled,
    )


def _held(columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The position after each bar: the fills' signed quantities summed in bar order. Where every bar has at most
    one fill (always, in ``run_reference``), a running sum adds the same numbers in the same order as adding each
    fill to every later bar did, which was a pass over the rest of the series per fill (most of a million-bar run's
    time); otherwise it does that."""
    at, signed = columns["filled_at"], columns["side"] * columns["quantity"]
    if np.all(at[1:] > at[:-1]):
        return np.cumsum(np.bincount(at, weights=signed, minlength=n), dtype=np.float64)
    held = np.zeros(n)
    for bar, move in zip(at.tolist(), signed.tolist()):
        held[bar:] += move
    return held


_FORM_BLOCK = 4096  # bars of a reference form turned into Python floats at a time (not the whole series at once)


def reference_form(strategy: Strategy, params: dict, bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The strategy's reference targets (``Strategy.reference_targets``: flat, long, short) when they stand for
    the ``_decide`` the reference path would call (a subclass that changes the rule loses its parent's form,
    ``Strategy.__init_subclass__``; an instance given its own rule is ``rule_patched``). Else None."""
    if type(strategy).reference_targets is Strategy.reference_targets or strategy.rule_patched():
        return None
    flat, long, short = strategy.reference_targets(params, bars)
    if not len(flat) == len(long) == len(short) == len(bars):
        raise ValueError(f"{strategy.name}: reference targets must have one entry per bar")
    return flat, long, short


def _form_block(form, lo: int, hi: int) -> tuple[list, list, list]:
    """The form's targets for bars lo..hi-1 as lists of Python floats (an array shared by sides is listed once)."""
    lists: dict[int, list] = {}
    for side in form:
        if id(side) not in lists:
            lists[id(side)] = side[lo:hi].tolist()
    return tuple(lists[id(side)] for side in form)


def _book(fills, state, decided, filled_at, order, fill, multiplier, unfilled) -> PositionState:
    if fill is None:
        unfilled.append(decided)
        return state
    fills.append(
        Fill(
            decided,
            filled_at,
            order.side.sign,
            float(fill.quantity),
            float(fill.price),
            float(fill.fee),
            float(fill.slippage),
        )
    )
    return state.apply_fill(
        side_sign=order.side.sign, quantity=fill.quantity, price=fill.price, fee=fill.fee, multiplier=multiplier
    )


def vectorizable(strategy: Strategy, model: FillModel, tick_size: Decimal) -> bool:
    """The vectorized path applies: a declared form, complete fills, and a tick of 1/m for exact rounding."""
    inverse = Decimal(1) / tick_size
    return (
        strategy.has_vectorized_form
        and not strategy.rule_patched()
        and model.max_volume_share is None
        and inverse == inverse.to_integral_value()
        and model.min_quantity_step == Decimal("1")
    )


def _round_to_grid(price: np.ndarray, per_unit: int, side: np.ndarray) -> np.ndarray:
    """``simulate_fill``'s rounding (buys up, sells down, onto k/m, on the shortest decimal of the float) in numpy.

    A float x is on the grid in that sense exactly when the correctly rounded k/m equals x; otherwise the float
    comparison of k/m with x orders them as the decimals do, so one step of correction either way is exact.
    """
    m = float(per_unit)
    up = side > 0
    k = np.where(up, np.ceil(price * m), np.floor(price * m))
    on_grid = np.round(price * m) / m == price
    k = np.where(on_grid, np.round(price * m), k)
    # Buys: the smallest k with k/m >= x; sells: the largest with k/m <= x.
    k = np.where(~on_grid & up & (k / m < price), k + 1, k)
    k = np.where(~on_grid & up & ((k - 1) / m >= price), k - 1, k)
    k = np.where(~on_grid & ~up & (k / m > price), k - 1, k)
    k = np.where(~on_grid & ~up & ((k + 1) / m <= price), k + 1, k)
    return k / m


def run_vectorized(
    strategy: Strategy,
    params: dict,
    bars: Bars,
    *,
    model: FillModel,
    tick_size: Decimal,
    multiplier: Decimal,
    capital: float,
) -> EngineResult:
    """The whole series at once; same orders and fills as :func:`run_reference` where :func:`vectorizable`."""
    n = len(bars)
    targets = strategy.vectorized_targets(params, bars)
    decided = ~np.isnan(targets)
    held = np.where(decided, targets, 0.0)
    before = np.concatenate(([0.0], held[:-1]))  # the position each decision sees (complete fills)
    order_mask = decided & (held != before)
    reasons = np.where(decided, np.int8(2), np.int8(1))
    reasons[order_mask] = 0
    at_close = model.fill_at is FillAt.CLOSE
    order_idx = np.flatnonzero(order_mask)
    unfilled: list[int] = []
    if not at_close and len(order_idx) and order_idx[-1] == n - 1:
        unfilled.append(int(order_idx[-1]))
        order_idx = order_idx[:-1]
    fill_idx = order_idx if at_close else order_idx + 1
    delta = held[order_idx] - before[order_idx]
    side = np.sign(delta)
    quantity = np.abs(delta)
    executed = (bars.close if at_close else bars.open)[fill_idx]
    slip = float(tick_size) * model.slippage_ticks + executed * model.slippage_bps / 10_000
    per_unit = int(Decimal(1) / tick_size)
    price = _round_to_grid(executed + side * slip, per_unit, side)
    reference = _round_to_grid(executed, per_unit, side)
    mult = float(multiplier)
    fee = np.round(float(model.fee_per_unit) * quantity + price * quantity * mult * model.fee_bps / 10_000, 8)
    slippage = np.abs(price - reference) * quantity * mult
    fills = {
        "decided_at": order_idx,
        "filled_at": fill_idx,
        "side": side.astype(np.int64),
        "quantity": quantity,
        "price": price,
        "fee": fee,
        "slippage": slippage,
    }
    position = np.cumsum(np.bincount(fill_idx, weights=side * quantity, minlength=n), dtype=np.float64)
    return _account(
        bars,
        fills,
        position,
        np.flatnonzero(order_mask).tolist(),
        reasons,
        capital=capital,
        multiplier=mult,
        path="vectorized",
        unfilled=unfilled,
    )


def _account(
    bars: Bars,
    fills: dict,
    position: np.ndarray,
    orders: list[int],
    reasons: np.ndarray,
    *,
    capital: float,
    multiplier: float,
    path: str,
    unfilled: list[int],
) -> EngineResult:
    """Equity marked at each close (cash + position × close × multiplier) and the round trips."""
    n = len(bars)
    flows = -fills["side"] * fills["quantity"] * fills["price"] * multiplier - fills["fee"]
    # dtype: numpy's bincount of no fills is an integer array, which the float capital cannot be added to.
    equity = np.cumsum(np.bincount(fills["filled_at"], weights=flows, minlength=n), dtype=np.float64)
    equity += capital
    equity += position * bars.close * multiplier
    counts = Counter(
        {NO_SIGNAL: int(np.count_nonzero(reasons == 1)), ALREADY_AT_TARGET: int(np.count_nonzero(reasons == 2))}
    )
    if unfilled:
        counts[NO_FILL] = len(unfilled)
    return EngineResult(
        fill_columns=fills,
        position=position,
        equity=equity,
        trades=round_trips(fills, multiplier),
        orders=orders,
        no_trade=+counts,
        no_trade_by_bar=reasons,
        path=path,
        unfilled=unfilled,
    )


def ts_to_datetimes(ts: np.ndarray) -> list[datetime]:
    micros = ts.astype("datetime64[us]").astype(np.int64)
    return [datetime.fromtimestamp(int(m) / 1_000_000, tz=UTC) for m in micros]


def closed_trades(result: EngineResult) -> list[dict]:
    return [t for t in result.trades if t["exit_bar"] is not None]


def finite_or_none(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None
