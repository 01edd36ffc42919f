"""Parameter matrices: expand a grid or a seeded random sample, fan out in chunks on the backtests queue, rank.

Every set runs in-sample (before ``split_at``) and out-of-sample (from it) on the same stored bars; the
classification reads both (the out-of-sample / in-sample Sharpe ratio is one of its checks), and results rank by
out-of-sample Sharpe, because in-sample rank is what overfitting inflates.

Walk-forward (``walk_forward_folds`` = N > 0), rolling: the range is cut into N+1 consecutive windows of equal
time; fold k (1..N) runs in-sample on window k-1 and out-of-sample on window k. Each set stores every fold's metrics,
ranks by the folds' mean out-of-sample Sharpe, and its classification adds the check mean OOS Sharpe / mean IS
Sharpe (a fold without a Sharpe makes the mean None: fail closed).

Over several instruments each set runs on every instrument, and the metrics are those of the combined account (one
capital, each instrument's PnL added), as a backtest run over the same instruments reports them.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from backtests.models import BacktestMatrix, MatrixChunk, RunStatus
from backtests.services import _invalid, validated_config
from bots.strategies import StrategyParameterError, get_strategy
from bots.timeframes import timeframe_delta
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.outbox import outbox_publish
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.models import Bar, Instrument

logger = logging.getLogger(__name__)

MAX_SETS = 10_000
MAX_DROPPED_EXAMPLES = 50  # dropped combinations kept with their parameters on the matrix row (all are counted)
MAX_FOLDS = 20
MIN_WINDOW_BARS = 2  # the engine needs two bars to decide and fill


def fold_windows(*, start: datetime, end: datetime, folds: int) -> list[dict]:
    """Rolling walk-forward: [start, end) in folds+1 equal windows; fold k trains on window k-1, tests on window k.
    Windows are half-open on bar open times."""
    edges = [start + (end - start) * k / (folds + 1) for k in range(folds + 2)]
    return [
        {
            "fold": k,
            "in_sample_start": edges[k - 1],
            "in_sample_end": edges[k],
            "out_of_sample_start": edges[k],
            "out_of_sample_end": edges[k + 1],
        }
        for k in range(1, folds + 1)
    ]


def _check_fold_bars(*, instruments: list[str], timeframe: str, start: datetime, end: datetime, folds: int) -> None:
    """Refuse a fold count that leaves a window with fewer than two stored bars of some instrument."""
    windows = fold_windows(start=start, end=end, folds=folds)
    edges = [(w["in_sample_start"], w["in_sample_end"]) for w in windows] + [
        (windows[-1]["out_of_sample_start"], windows[-1]["out_of_sample_end"])
    ]
    last_open = end - timeframe_delta(timeframe)  # load_bars keeps bars complete within the range
    for instrument in Instrument.objects.filter(symbol__in=instruments).order_by("symbol"):
        stored = Bar.objects.filter(instrument=instrument, timeframe=timeframe, ts__gte=start, ts__lte=last_open)
        for lo, hi in edges:
            count = stored.filter(ts__gte=lo, ts__lt=hi).count()
            if count < MIN_WINDOW_BARS:
                raise _invalid(
                    "walk_forward_folds",
                    f"With {folds} folds the window {lo.isoformat()} – {hi.isoformat()} has {count} "
                    f"stored {timeframe} bars of {instrument.symbol}; each window needs at least "
                    f"{MIN_WINDOW_BARS}. Use fewer folds or a longer range.",
                )


@dataclass
class Expansion:
    """What a space asked for and what runs: the valid, distinct sets in a stable order, and each combination
    left out with its reason (the strategy refused it, or it repeats an earlier set once validated)."""

    sets: list[dict]
    requested: int
    dropped: list[dict]  # {parameters, reason}, every one

    def dropped_summary(self) -> dict:
        """Bounded for the matrix row: the count, the count per reason, the first MAX_DROPPED_EXAMPLES."""
        return {
            "count": len(self.dropped),
            "by_reason": dict(Counter(d["reason"] for d in self.dropped)),
            "examples": self.dropped[:MAX_DROPPED_EXAMPLES],
        }


def expand_sets(*, strategy: str, base: dict, space: dict, mode: str, samples: int | None, seed: int) -> list[dict]:
    """The valid parameter sets, in a stable order; sets the strategy refuses (fast >= slow, ...) are left out."""
    return expand(strategy=strategy, base=base, space=space, mode=mode, samples=samples, seed=seed).sets


def expand(*, strategy: str, base: dict, space: dict, mode: str, samples: int | None, seed: int) -> Expansion:
    """The space's combinations (a grid's product or a seeded sample), validated by the strategy."""
    strat = get_strategy(strategy)
    if not isinstance(space, dict) or not space:
        raise _invalid("space", "Give at least one parameter to vary.")
    known = {spec.name: spec for spec in strat.params}
    for name in space:
        if name not in known:
            raise _invalid("space", f"Unknown parameter {name!r} for {strategy}.")
    candidates: list[dict] = []
    if mode == BacktestMatrix.Mode.GRID:
        if not all(isinstance(v, list) and v for v in space.values()):
            raise _invalid("space", "A grid gives a non-empty list of values per parameter.")
        names = list(space)
        combos = 1
        for values in space.values():
            combos *= len(values)
        if combos > MAX_SETS:
            raise _invalid("space", f"The grid has {combos} sets; at most {MAX_SETS}.")
        candidates = [dict(base, **dict(zip(names, combo))) for combo in itertools.product(*space.values())]
    else:
        if not samples or samples < 1 or samples > MAX_SETS:
            raise _invalid("samples", f"Give between 1 and {MAX_SETS} samples.")
        rng = random.Random(seed)  # seeded: the same matrix draws the same sets
        for _ in range(samples):
            chosen = {}
            for name, rule in space.items():
                if isinstance(rule, list) and rule:
                    chosen[name] = rng.choice(rule)
                elif isinstance(rule, dict) and {"min", "max"} <= set(rule):
                    if known[name].kind is int:
                        chosen[name] = rng.randint(int(rule["min"]), int(rule["max"]))
                    else:
                        chosen[name] = rng.uniform(float(rule["min"]), float(rule["max"]))
                else:
                    raise _invalid("space", f"{name}: give a list of values or {{min, max}}.")
            candidates.append(dict(base, **chosen))
    sets, seen, dropped = [], {}, []
    for params in candidates:
        try:
            clean = strat.validate(params)
        except StrategyParameterError as exc:
            dropped.append({"parameters": params, "reason": str(exc)})
            continue
        key = strat.parameters_hash(clean)
        if key in seen:
            dropped.append({"parameters": params, "reason": "Repeats an earlier set (same parameters once validated)."})
            continue
        seen[key] = len(sets)
        sets.append(clean)
    if not sets:
        reasons = Counter(d["reason"] for d in dropped).most_common(3)
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            details={
                "space": [
                    f"No parameter set in the space is valid for the strategy; {len(dropped)} of {len(candidates)} "
                    f"dropped: " + "; ".join(f"{n} × {reason}" for reason, n in reasons)
                ]
            },
        )
    return Expansion(sets=sets, requested=len(candidates), dropped=dropped)


def matrix_create(
    *,
    actor,
    strategy: str,
    space: dict,
    mode: str,
    instruments: list[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    split_at: datetime,
    base_parameters: dict | None = None,
    samples: int | None = None,
    seed: int = 0,
    fill_model: dict | None = None,
    starting_capital: Decimal = Decimal("100000"),
    walk_forward_folds: int = 0,
) -> BacktestMatrix:
    if mode not in BacktestMatrix.Mode.values:
        raise _invalid("mode", f"One of {', '.join(BacktestMatrix.Mode.values)}.")
    if not 0 <= walk_forward_folds <= MAX_FOLDS:
        raise _invalid("walk_forward_folds", f"Between 0 (no walk-forward) and {MAX_FOLDS}.")
    validated_config(
        strategy=strategy,
        parameters=base_parameters,
        instruments=instruments,
        timeframe=timeframe,
        start=start,
        end=end,
        fill_model=fill_model,
    )
    if not start < split_at < end:
        raise _invalid("split_at", "Must fall strictly inside the range (in-sample before, out-of-sample after).")
    if walk_forward_folds:
        _check_fold_bars(instruments=instruments, timeframe=timeframe, start=start, end=end, folds=walk_forward_folds)
    expansion = expand(
        strategy=strategy, base=base_parameters or {}, space=space, mode=mode, samples=samples, seed=seed
    )
    sets = expansion.sets
    chunk = settings.BACKTEST_MATRIX_CHUNK_SIZE
    bounds = [(i, min(i + chunk, len(sets))) for i in range(0, len(sets), chunk)]
    with transaction.atomic():
        matrix = BacktestMatrix.objects.create(
            strategy=strategy,
            base_parameters=base_parameters or {},
            space=space,
            mode=mode,
            samples=samples,
            seed=seed,
            instruments=instruments,
            timeframe=timeframe,
            range_start=start,
            range_end=end,
            split_at=split_at,
            walk_forward_folds=walk_forward_folds,
            fill_model=fill_model or {},
            starting_capital=starting_capital,
            status=RunStatus.RUNNING,
            sets_requested=expansion.requested,
            sets_total=len(sets),
            sets_dropped=expansion.dropped_summary(),
            folds_total=len(sets) * walk_forward_folds,
            chunks_total=len(bounds),
            trace_id=current_trace_id(),
            created_by=getattr(actor, "username", "system"),
        )
        audit_record(
            action="backtest_matrix.create",
            resource_type="backtest_matrix",
            resource_id=matrix.id,
            actor=actor,
            after={
                "strategy": strategy,
                "mode": mode,
                "sets": len(sets),
                "sets_requested": expansion.requested,
                "sets_dropped": len(expansion.dropped),
                "chunks": len(bounds),
                "walk_forward_folds": walk_forward_folds,
            },
        )
        MatrixChunk.objects.bulk_create(
            [
                MatrixChunk(
                    tenant_id=matrix.tenant_id,
                    matrix=matrix,
                    first=lo,
                    stop=hi,
                    last_dispatch=dispatch_chunk(matrix, lo, hi),
                )
                for lo, hi in bounds
            ]
        )
    return matrix


def dispatch_chunk(matrix: BacktestMatrix, first: int, stop: int):
    return outbox_publish(
        task="backtests.run_matrix_chunk",
        queue="backtests",
        tenant_id=matrix.tenant_id,
        kwargs={"matrix_id": matrix.id, "first": first, "stop": stop, "tenant_id": matrix.tenant_id},
        what=f"backtest matrix {matrix.id} sets {first}-{stop}",
    )
