"""The backtest report page's content, built from what the run stored (never recomputed, never invented).

The equity curve is the run's stored one (at most ``EQUITY_CURVE_POINTS`` points, downsampled at run time); the
drawdown is derived from it. A finished run without a curve says so instead of drawing a flat line.
"""

from __future__ import annotations

import json

from backtests.models import TERMINAL_RUN_STATUSES, BacktestRun, RunStatus

TRADES_SHOWN = 500
# The codes the engine counts per month (runs.build_report); others (NO_FILL) only in the total.
MONTHLY_CODES = ("NO_SIGNAL", "ALREADY_AT_TARGET")

# (metric key, label, kind) in the order the table shows them; kind picks the formatting.
METRIC_ROWS = (
    ("total_return", "Total return", "percent"),
    ("cagr", "CAGR", "percent"),
    ("volatility", "Annualized volatility", "percent"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "Max drawdown", "percent"),
    ("max_drawdown_duration_days", "Longest drawdown (days)", "number"),
    ("win_rate", "Win rate", "percent"),
    ("profit_factor", "Profit factor", "ratio"),
    ("average_trade", "Average trade", "money"),
    ("number_of_trades", "Trades", "count"),
    ("exposure", "Exposure", "percent"),
    ("turnover", "Turnover", "ratio"),
    ("fees_paid", "Fees paid", "money"),
    ("slippage_paid", "Slippage paid", "money"),
    ("start_equity", "Start equity", "money"),
    ("end_equity", "End equity", "money"),
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
    return {
        "status": run.status,
        "bars_done": run.bars_done,
        "bars_total": run.bars_total,
        "percent": percent,
        "live": run.status not in TERMINAL_RUN_STATUSES,
        "queued": run.status == RunStatus.QUEUED,
    }


def _drawdown(equity: list[float]) -> list[float]:
    peak, out = None, []
    for value in equity:
        peak = value if peak is None or value > peak else peak
        out.append(round(-(1 - value / peak) * 100, 4) if peak else 0.0)
    return out


# unfold's app.js takes data-options instead of its defaults: a few unrotated time labels, no points, no legend.
CHART_OPTIONS = json.dumps(
    {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "plugins": {"legend": {"display": False}, "tooltip": {"enabled": True, "mode": "index", "intersect": False}},
        "elements": {"point": {"radius": 0}, "line": {"borderWidth": 1.5}},
        "scales": {
            "x": {"ticks": {"maxTicksLimit": 8, "maxRotation": 0, "color": "#9ca3af"}, "grid": {"display": False}},
            "y": {"ticks": {"color": "#9ca3af"}, "grid": {}},
        },
    }
)


def _chart(labels, values, label, color, fill=False) -> str:
    return json.dumps(
        {
            "labels": labels,
            "datasets": [
                {"label": label, "data": values, "borderColor": color, "backgroundColor": color, "fill": fill}
            ],
        }
    )


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
        "metrics": [
            {"key": key, "label": label, "value": _format(metrics.get(key), kind), "reason": unavailable.get(key)}
            for key, label, kind in METRIC_ROWS
            if key in metrics
        ],
        "checks": run.classification_reasons or [],
        "equity_points": len(curve),
        "chart_options": CHART_OPTIONS,
        "equity_chart": _chart(labels, equity, "Equity", "var(--color-primary-600)") if curve else None,
        "drawdown_chart": _chart(labels, _drawdown(equity), "Drawdown %", "#dc2626", fill=True) if curve else None,
        "trades": trades[:TRADES_SHOWN],
        "trades_total": len(trades),
        "no_trade_codes": codes,
        "no_trade_total": [(counts.get("total") or {}).get(code) for code in codes],
        "no_trade_months": [
            {"month": month, "counts": [row.get(code, 0) if code in MONTHLY_CODES else None for code in codes]}
            for month, row in sorted(by_month.items())
        ],
    }


def matrix_progress(matrix) -> dict:
    done, total = (
        (matrix.folds_done, matrix.folds_total) if matrix.folds_total else (matrix.sets_done, matrix.sets_total)
    )
    return {
        "status": matrix.status,
        "done": done,
        "total": total,
        "unit": "folds" if matrix.folds_total else "sets",
        "percent": round(100 * done / total, 1) if total else None,
        "live": matrix.status not in TERMINAL_RUN_STATUSES,
        "queued": matrix.status == RunStatus.QUEUED,
    }


def _heat_color(score: float | None, low: float, high: float) -> str:
    if score is None:
        return "transparent"
    share = 0.5 if high == low else (score - low) / (high - low)
    return f"hsla({round(120 * share)}, 70%, 45%, .55)"  # red (worst) to green (best)


def heatmap(results: list, x: str | None, y: str | None) -> dict | None:
    """The best score per (x, y) over the other parameters, for the two the operator picked."""
    if not x or not y or x == y:
        return None
    cells: dict[tuple, list] = {}
    for r in results:
        if x in r.parameters and y in r.parameters:
            cells.setdefault((r.parameters[x], r.parameters[y]), []).append(r)
    xs = sorted({k[0] for k in cells}, key=lambda v: (str(type(v)), v))
    ys = sorted({k[1] for k in cells}, key=lambda v: (str(type(v)), v))
    scores = [r.score for rs in cells.values() for r in rs if r.score is not None]
    low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
    rows = []
    for yv in ys:
        row = []
        for xv in xs:
            found = cells.get((xv, yv), [])
            scored = [r for r in found if r.score is not None]
            best = max(scored, key=lambda r: (r.enough_trades, r.score)) if scored else None
            row.append(
                {
                    "score": best.score if best else None,
                    "sets": len(found),
                    "enough_trades": best.enough_trades if best else None,
                    "color": _heat_color(best.score if best else None, low, high),
                }
            )
        rows.append({"y": yv, "cells": row})
    return {"x": x, "y": y, "xs": xs, "rows": rows}


def matrix_report(matrix, results: list, *, x: str | None, y: str | None) -> dict:
    varied = sorted(matrix.space) if isinstance(matrix.space, dict) else []
    if not x and not y and len(varied) >= 2:
        x, y = varied[0], varied[1]
    dropped = matrix.sets_dropped
    return {
        "progress": matrix_progress(matrix),
        "results": results,
        "parameters": varied,
        "x": x,
        "y": y,
        "heatmap": heatmap(results, x, y),
        "dropped": dropped,
        "dropped_reasons": sorted((dropped or {}).get("by_reason", {}).items(), key=lambda kv: -kv[1]),
    }
