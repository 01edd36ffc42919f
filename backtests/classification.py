"""PASS / MARGINAL / FAIL from a run's metrics, by documented thresholds, each reason recorded.

A check FAILs when its value is missing (fail closed: no Sharpe is not a good Sharpe) or beyond its hard bound,
is MARGINAL between its marginal bound and its pass bound, and passes otherwise. The run's classification is the
worst of its checks. Tenants override any threshold (``BacktestThresholds.from_overrides``).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields


class Classification(enum.StrEnum):
    PASS = "PASS"
    MARGINAL = "MARGINAL"
    FAIL = "FAIL"


_ORDER = {Classification.PASS: 0, Classification.MARGINAL: 1, Classification.FAIL: 2}


@dataclass(frozen=True)
class BacktestThresholds:
    min_trades: int = 30
    marginal_min_trades: int = 15
    min_sharpe: float = 1.0
    marginal_min_sharpe: float = 0.5
    max_drawdown: float = 0.20
    marginal_max_drawdown: float = 0.30
    min_profit_factor: float = 1.2
    marginal_min_profit_factor: float = 1.0
    min_oos_is_sharpe_ratio: float = 0.5
    marginal_min_oos_is_sharpe_ratio: float = 0.25

    @classmethod
    def from_overrides(cls, overrides: dict | None) -> BacktestThresholds:
        names = {f.name for f in fields(cls)}
        unknown = set(overrides or {}) - names
        if unknown:
            raise ValueError(f"unknown thresholds: {', '.join(sorted(unknown))}")
        return cls(**(overrides or {}))

    def as_dict(self) -> dict:
        return asdict(self)


def _check(name, value, pass_bound, marginal_bound, *, higher_is_better=True, missing: str | None = None) -> dict:
    """One check; a missing value FAILs and says why (``missing``, or that it was not measured)."""
    if value is None:
        verdict = Classification.FAIL
    elif higher_is_better:
        verdict = (
            Classification.PASS
            if value >= pass_bound
            else Classification.MARGINAL
            if value >= marginal_bound
            else Classification.FAIL
        )
    else:
        verdict = (
            Classification.PASS
            if value <= pass_bound
            else Classification.MARGINAL
            if value <= marginal_bound
            else Classification.FAIL
        )
    comparison = ">=" if higher_is_better else "<="
    check = {
        "check": name,
        "value": value,
        "pass_if": f"{comparison} {pass_bound}",
        "marginal_if": f"{comparison} {marginal_bound}",
        "result": str(verdict),
    }
    if value is None:
        check["reason"] = missing or f"No {name} was measured; a missing value fails (fail closed)."
    return check


def enough_trades(trades: int | None, thresholds: BacktestThresholds) -> bool:
    """The classification's minimum number of trades (``min_trades``): a result with fewer is flagged, and a
    ranking never puts it above one that has enough (a Sharpe of 71 from 2 trades is noise)."""
    return trades is not None and trades >= thresholds.min_trades


def classify(
    metrics: dict,
    *,
    thresholds: BacktestThresholds = BacktestThresholds(),
    oos_metrics: dict | None = None,
    walk_forward: dict | None = None,
) -> tuple[Classification, list[dict]]:
    """Classify in-sample ``metrics`` (and the out-of-sample / in-sample Sharpe ratio when ``oos_metrics`` given,
    and the walk-forward folds' mean OOS / mean IS Sharpe ratio when ``walk_forward`` is given)."""
    t = thresholds
    why = metrics.get("unavailable") or {}
    reasons = [
        _check("number_of_trades", metrics.get("number_of_trades"), t.min_trades, t.marginal_min_trades),
        _check("sharpe", metrics.get("sharpe"), t.min_sharpe, t.marginal_min_sharpe, missing=why.get("sharpe")),
        _check(
            "max_drawdown", metrics.get("max_drawdown"), t.max_drawdown, t.marginal_max_drawdown, higher_is_better=False
        ),
        _check("profit_factor", metrics.get("profit_factor"), t.min_profit_factor, t.marginal_min_profit_factor),
    ]
    if oos_metrics is not None:
        is_sharpe, oos_sharpe = metrics.get("sharpe"), oos_metrics.get("sharpe")
        ratio = oos_sharpe / is_sharpe if is_sharpe and oos_sharpe is not None and is_sharpe > 0 else None
        missing = (why.get("sharpe") and f"In sample: {why['sharpe']}") or (
            (oos_metrics.get("unavailable") or {}).get("sharpe")
            and f"Out of sample: {oos_metrics['unavailable']['sharpe']}"
        )
        reasons.append(
            _check(
                "oos_is_sharpe_ratio",
                ratio,
                t.min_oos_is_sharpe_ratio,
                t.marginal_min_oos_is_sharpe_ratio,
                missing=missing,
            )
        )
    if walk_forward is not None:
        reasons.append(
            _check(
                "walk_forward_oos_is_sharpe_ratio",
                walk_forward.get("oos_is_sharpe_ratio"),
                t.min_oos_is_sharpe_ratio,
                t.marginal_min_oos_is_sharpe_ratio,
                missing=walk_forward.get("unavailable"),
            )
        )
    worst = max((Classification(r["result"]) for r in reasons), key=_ORDER.__getitem__)
    return worst, reasons
