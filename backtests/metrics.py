"""Performance metrics of a run (a backtest, a paper record). Pure numpy; undefined values are None, never 0.

Returns are measured per UTC day (the last equity of each day), annualized with ``days_per_year`` (252 for
exchange-traded futures, 365 for crypto). Sharpe and Sortino assume a zero risk-free rate.

Annualizing a short range multiplies noise into fantasy: 1.4 days of minute bars gave a CAGR of 5e34 and a Sharpe
of 15. So the annualized figures (CAGR, volatility, Sharpe, Sortino, Calmar) are None below
``settings.METRICS_MIN_DAYS_FOR_ANNUALIZED`` days of range, and ``unavailable`` names each missing figure with
the reason, which the classification and the report show (a None Sharpe fails its check: fail closed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime  # noqa: F401  (timestamps may be datetimes or a datetime64 array)

import numpy as np
from django.conf import settings

ANNUALIZED = ("cagr", "volatility", "sharpe", "sortino", "calmar")


@dataclass(frozen=True, slots=True)
class TradeResult:
    pnl: float  # net of fees
    fees: float = 0.0
    slippage: float = 0.0
    notional: float = 0.0  # traded notional, entry and exit together


def _as_micros(timestamps) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch (UTC); numpy datetime64 arrays pass without a loop."""
    if isinstance(timestamps, np.ndarray) and np.issubdtype(timestamps.dtype, np.datetime64):
        return timestamps.astype("datetime64[us]").astype(np.int64)
    return np.array([int(ts.timestamp() * 1_000_000) for ts in timestamps], dtype=np.int64)


def _daily_last(micros: np.ndarray, equity: np.ndarray) -> np.ndarray:
    days = micros // 86_400_000_000
    last_of_day = np.flatnonzero(np.append(days[1:] != days[:-1], True))
    return equity[last_of_day]


def _drawdown(micros: np.ndarray, equity: np.ndarray) -> tuple[float, float]:
    """(max drawdown as a positive fraction, longest peak-to-recovery time in days, open drawdowns to the end)."""
    peaks = np.maximum.accumulate(equity)
    drawdowns = 1.0 - equity / peaks
    at_peak = np.flatnonzero(drawdowns <= 0)  # index 0 is always a peak
    spans = []
    gaps = np.flatnonzero(np.diff(at_peak) > 1)
    if gaps.size:
        spans.append(micros[at_peak[gaps + 1]] - micros[at_peak[gaps]])
    if at_peak[-1] != len(equity) - 1:
        spans.append(np.array([micros[-1] - micros[at_peak[-1]]]))
    longest = float(np.concatenate(spans).max()) / 86_400_000_000 if spans else 0.0
    return float(drawdowns.max(initial=0.0)), longest


def _clean(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 10)


def compute_metrics(
    *,
    timestamps: Sequence[datetime],
    equity: Sequence[float],
    trades: Sequence[TradeResult],
    exposure_flags: Sequence[bool] | None = None,
    days_per_year: int = 252,
    min_days_for_annualized: float | None = None,
    range_days: float | None = None,
) -> dict[str, float | int | None | dict]:
    """Every metric the backtest report and the autonomy score use. ``min_days_for_annualized`` defaults to
    ``settings.METRICS_MIN_DAYS_FOR_ANNUALIZED``; ``range_days`` is the requested range (a run's start to end),
    by default the span of the timestamps (which is one bar short of the range)."""
    if min_days_for_annualized is None:
        min_days_for_annualized = settings.METRICS_MIN_DAYS_FOR_ANNUALIZED
    if len(timestamps) != len(equity) or len(equity) < 2:
        raise ValueError("metrics need an equity curve of at least two points, one per timestamp")
    curve = np.asarray(equity, dtype=float)
    micros = _as_micros(timestamps)
    start, end = curve[0], curve[-1]
    years = (micros[-1] - micros[0]) / 1_000_000 / (365.25 * 86400)

    daily = _daily_last(micros, curve)
    daily = np.concatenate(([start], daily)) if daily[0] != start or len(daily) == 1 else daily
    returns = np.diff(daily) / daily[:-1]
    mean = returns.mean() if returns.size else None
    std = returns.std(ddof=1) if returns.size >= 2 else None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2))) if returns.size >= 2 else None
    scale = math.sqrt(days_per_year)

    total_return = end / start - 1.0
    cagr = (end / start) ** (1.0 / years) - 1.0 if years > 0 and end > 0 else None
    max_dd, dd_days = _drawdown(micros, curve)

    pnls = np.array([t.pnl for t in trades], dtype=float)
    wins, losses = pnls[pnls > 0], pnls[pnls < 0]
    traded_notional = float(sum(t.notional for t in trades))

    if range_days is None:
        range_days = (micros[-1] - micros[0]) / 86_400_000_000
    metrics = {
        "total_return": _clean(total_return),
        "cagr": _clean(cagr),
        "volatility": _clean(std * scale if std is not None else None),
        "sharpe": _clean(mean / std * scale if std else None),
        "sortino": _clean(mean / downside * scale if downside else None),
        "max_drawdown": _clean(max_dd),
        "max_drawdown_duration_days": _clean(dd_days),
        "calmar": _clean(cagr / max_dd if cagr is not None and max_dd > 0 else None),
        "win_rate": _clean(len(wins) / len(pnls) if len(pnls) else None),
        "profit_factor": _clean(wins.sum() / -losses.sum() if len(losses) else None),
        "average_trade": _clean(pnls.mean() if len(pnls) else None),
        "number_of_trades": len(pnls),
        "exposure": _clean(
            float(np.mean(exposure_flags)) if exposure_flags is not None and len(exposure_flags) else None
        ),
        "turnover": _clean(traded_notional / float(curve.mean())),
        "fees_paid": _clean(sum(t.fees for t in trades)),
        "slippage_paid": _clean(sum(t.slippage for t in trades)),
        "start_equity": _clean(start),
        "end_equity": _clean(end),
        "range_days": _clean(range_days),
    }
    unavailable = {}
    if range_days < min_days_for_annualized:
        reason = (
            f"The range is {range_days:.1f} days, shorter than the {min_days_for_annualized:g} days "
            f"(METRICS_MIN_DAYS_FOR_ANNUALIZED) an annualized figure needs."
        )
        for name in ANNUALIZED:
            metrics[name] = None
            unavailable[name] = reason
    metrics["unavailable"] = unavailable
    return metrics
