"""The backtest report page's content, built from what the run stored (never recomputed, never invented).

The equity curve is the run's stored one (at most ``EQUITY_CURVE_POINTS`` points, downsampled at run time); the
drawdown is derived from it. A finished run without a curve says so instead of drawing a flat line.
"""

from __future__ import annotations

import json

from backtests.models import TERMINAL_RUN_STATUSES, BacktestRun, RunStatus

TRADES_SHOWN = 500
# The codes the engine counts per month (services.build_report); others (NO_FILL) only in the total.
MONTHLY_CODES = ("NO_SIGNAL", "ALREADY_AT_TARGET")

# (metric key, label, kind) in the order the table shows them; kind picks the formatting.
METRIC_ROWS = (
    ("total_return", "Total return", "percent"), ("cagr", "CAGR", "percent"),
    ("volatility", "Annualized volatility", "percent"), ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"), ("calmar", "Calmar", "ratio"), ("max_drawdown", "Max drawdown", "percent"),
    ("max_drawdown_duration_days", "Longest drawdown (days)", "number"), ("win_rate", "Win rate", "percent"),
    ("profit_factor", "Profit factor", "ratio"), ("average_trade", "Average trade", "money"),
    ("number_of_trades", "Trades", "count"), ("exposure", "Exposure", "percent"), ("turnover", "Turnover", "ratio"),
    ("fees_paid", "Fees paid", "money"), ("slippage_paid", "Slippage paid", "money"),
    ("start_equity", "Start equity", "money"), ("end_equity", "End equity", "money"),
    ("range_days", "Range (days)", "number"),
)


def _format(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "percent":
        return f"{value * 100:.2f} %"
    if kind == "count":
        return str(value)
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.3f}" if kind == "ratio" else f"{value:.1f}"


def progress(run: BacktestRun) -> dict:
    """What the progress bar shows; ``live`` keeps the panel polling (QUEUED or RUNNING)."""
    percent = round(100 * run.bars_done / run.bars_total, 1) if run.bars_total else None
    return {"status": run.status, "bars_done": run.bars_done, "bars_total": run.bars_total, "percent": percent,
            "live": run.status not in TERMINAL_RUN_STATUSES, "queued": run.status == RunStatus.QUEUED}


def _drawdown(equity: list[float]) -> list[float]:
    peak, out = None, []
    for value in equity:
        peak = value if peak is None or value > peak else peak
        out.append(round(-(1 - value / peak) * 100, 4) if peak else 0.0)
    return out


def _chart(labels, values, label, color, fill=False) -> str:
    return json.dumps({"labels": labels, "datasets": [
        {"label": label, "data": values, "borderColor": color, "backgroundColor": color, "fill": fill}]})


def backtest_report(run: BacktestRun) -> dict:
    metrics = run.metrics or {}
    unavailable = metrics.get("unavailable") or {}
    curve = run.equity_curve or []
    labels = [ts[:16].replace("T", " ") for ts, _ in curve]
    equity = [value for _, value in curve]
    counts = run.no_trade_counts or {}
    by_month = counts.get("by_month") or {}
    codes = sorted({code for month in by_month.values() for code in month} | set(counts.get("total") or {}))
    trades = run.trades or []
    return {
        "progress": progress(run),
        "finished": run.status == RunStatus.FINISHED,
        "metrics": [{"key": key, "label": label, "value": _format(metrics.get(key), kind),
                     "reason": unavailable.get(key)} for key, label, kind in METRIC_ROWS if key in metrics],
        "checks": run.classification_reasons or [],
        "equity_points": len(curve),
        "equity_chart": _chart(labels, equity, "Equity", "var(--color-primary-600)") if curve else None,
        "drawdown_chart": _chart(labels, _drawdown(equity), "Drawdown %", "#dc2626", fill=True) if curve else None,
        "trades": trades[:TRADES_SHOWN],
        "trades_total": len(trades),
        "no_trade_codes": codes,
        "no_trade_total": [(counts.get("total") or {}).get(code) for code in codes],
        "no_trade_months": [{"month": month, "counts": [row.get(code, 0) if code in MONTHLY_CODES else None
                                                        for code in codes]}
                            for month, row in sorted(by_month.items())],
    }
