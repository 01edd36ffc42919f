"""Running a parameter matrix: each chunk of sets evaluated in-sample, out-of-sample and per walk-forward fold
(one Celery task per chunk), and beat's sweep that re-sends chunks no worker began or finished."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backtests.classification import classify, enough_trades
from backtests.data import find_gaps, load_bars
from backtests.matrices import dispatch_chunk, expand_sets, fold_windows
from backtests.metrics import TradeResult, compute_metrics
from backtests.models import BacktestMatrix, MatrixChunk, MatrixResult, RunStatus
from backtests.runs import InstrumentRun, combined_equity, run_engine
from backtests.services import tenant_thresholds, validated_config
from bots.strategies import Bars, get_strategy
from controlplane import tenancy
from controlplane.errors import ErrorCode
from controlplane.selectors import all_tenant_ids
from controlplane.services import audit_record
from execution.fill_model import FillModel
from execution.models import Instrument

logger = logging.getLogger(__name__)


def _utc64(at: datetime) -> np.datetime64:
    return np.datetime64(at.astimezone(UTC).replace(tzinfo=None), "us")


def _window(bars: Bars, lo: datetime | None, hi: datetime | None) -> Bars:
    """The bars opening in [lo, hi) (a view: the timestamps are sorted)."""
    ts = bars.ts.astype("datetime64[us]")
    a = 0 if lo is None else int(np.searchsorted(ts, _utc64(lo), side="left"))
    b = len(ts) if hi is None else int(np.searchsorted(ts, _utc64(hi), side="left"))
    return Bars(*(getattr(bars, c)[a:b] for c in ("ts", "open", "high", "low", "close", "volume")))


def evaluate(
    *,
    strategy: str,
    params: dict,
    legs: Legs,
    model: FillModel,
    capital: float,
    days_per_year: int,
    range_days: float | None = None,
) -> dict:
    """Metrics of one parameter set on one stretch of bars per instrument (no traces, no equity curve: a matrix
    keeps numbers). Several instruments share the capital, as in a backtest run."""
    if any(len(bars) < 2 for _, bars in legs):
        return {"number_of_trades": 0, "error": "fewer than two bars"}
    runs = [
        InstrumentRun(
            instrument,
            bars,
            run_engine(
                strategy_name=strategy, params=params, bars=bars, instrument=instrument, model=model, capital=capital
            ),
        )
        for instrument, bars in legs
    ]
    trades = [
        TradeResult(pnl=t["pnl"], fees=t["fees"], slippage=t["slippage"], notional=t["notional"])
        for r in runs
        for t in r.result.trades
        if t["exit_bar"] is not None
    ]
    if len(runs) == 1:
        stamps, equity, exposed = runs[0].bars.ts, runs[0].result.equity, runs[0].result.position != 0
    else:
        stamps, equity, exposed = combined_equity(runs, capital)
    return compute_metrics(
        timestamps=stamps,
        equity=equity,
        trades=trades,
        exposure_flags=exposed,
        days_per_year=days_per_year,
        range_days=range_days,
    )


def _days(lo: datetime, hi: datetime) -> float:
    return (hi - lo).total_seconds() / 86400


def _mean(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def walk_forward_summary(folds: list[dict]) -> dict:
    """The folds' aggregate the ranking and the classification read."""
    is_sharpe = _mean([f["in_sample"].get("sharpe") for f in folds])
    oos_sharpe = _mean([f["out_of_sample"].get("sharpe") for f in folds])
    ratio = oos_sharpe / is_sharpe if is_sharpe is not None and oos_sharpe is not None and is_sharpe > 0 else None
    why = next(
        (
            f"Fold {f['fold']} {side.replace('_', ' ')}: {f[side]['unavailable']['sharpe']}"
            for f in folds
            for side in ("in_sample", "out_of_sample")
            if (f[side].get("unavailable") or {}).get("sharpe")
        ),
        None,
    )
    return {
        "folds": len(folds),
        "unavailable": why,
        "mean_in_sample_sharpe": is_sharpe,
        "mean_out_of_sample_sharpe": oos_sharpe,
        "oos_is_sharpe_ratio": ratio,
        "out_of_sample_trades": sum(f["out_of_sample"].get("number_of_trades") or 0 for f in folds),
        "out_of_sample_total_return": _mean([f["out_of_sample"].get("total_return") for f in folds]),
    }


def run_chunk(*, matrix_id: int, first: int, stop: int) -> int:
    """Run sets [first, stop) of a matrix; safe to run twice (results are unique per index, progress counted once).

    Only bounds the matrix was cut into run: a message for other bounds (left in the broker by other work whose
    ids were reused, or from before a chunk-size change) would otherwise count as a chunk of this matrix."""
    with transaction.atomic():
        matrix = BacktestMatrix.objects.filter(pk=matrix_id).first()
        done = MatrixResult.objects.filter(matrix_id=matrix_id, index=first).exists()
        chunks = MatrixChunk.objects.filter(matrix_id=matrix_id)
        known = chunks.filter(first=first, stop=stop).exists() or not chunks.exists()  # none: made before chunks
        if not known:
            logger.warning(
                "matrix chunk message with bounds the matrix does not have: ignored",
                extra={"matrix_id": matrix_id, "first": first, "stop": stop},
            )
        elif matrix is not None and matrix.status == RunStatus.RUNNING and not done:
            # Committed before the work: the sweep tells a chunk being run from one whose message never arrived.
            chunks.filter(first=first, finished_at__isnull=True).update(started_at=timezone.now())
    if matrix is None or matrix.status != RunStatus.RUNNING or done or not known:
        return 0
    sets = expand_sets(
        strategy=matrix.strategy,
        base=matrix.base_parameters,
        space=matrix.space,
        mode=matrix.mode,
        samples=matrix.samples,
        seed=matrix.seed,
    )[first:stop]
    _, _, model = validated_config(
        strategy=matrix.strategy,
        parameters=matrix.base_parameters,
        instruments=matrix.instruments,
        timeframe=matrix.timeframe,
        start=matrix.range_start,
        end=matrix.range_end,
        fill_model=matrix.fill_model,
    )
    by_symbol = {i.symbol: i for i in Instrument.objects.filter(symbol__in=matrix.instruments)}
    legs, gaps = [], []
    for symbol in matrix.instruments:
        instrument = by_symbol[symbol]
        bars = load_bars(
            instrument=instrument, timeframe=matrix.timeframe, start=matrix.range_start, end=matrix.range_end
        )
        gaps += find_gaps(
            instrument=instrument,
            timeframe=matrix.timeframe,
            start=matrix.range_start,
            end=matrix.range_end,
            ts=bars.ts,
        )
        legs.append((instrument, bars))
    if gaps or any(len(bars) < 2 for _, bars in legs):
        _matrix_fail(
            matrix_id,
            ErrorCode.BACKTEST_DATA_GAPS if gaps else ErrorCode.BACKTEST_NO_DATA,
            f"{len(gaps)} gaps in the stored bars" if gaps else "no stored bars in the range",
        )
        return 0

    def cut(lo, hi) -> Legs:
        return [(instrument, _window(bars, lo, hi)) for instrument, bars in legs]

    in_sample, out_sample = cut(None, matrix.split_at), cut(matrix.split_at, None)
    windows = (
        fold_windows(start=matrix.range_start, end=matrix.range_end, folds=matrix.walk_forward_folds)
        if matrix.walk_forward_folds
        else []
    )
    fold_legs = [
        (cut(w["in_sample_start"], w["in_sample_end"]), cut(w["out_of_sample_start"], w["out_of_sample_end"]))
        for w in windows
    ]
    thresholds = tenant_thresholds()
    crypto = all(i.asset_class == Instrument.AssetClass.CRYPTO for i, _ in legs)
    days = 365 if crypto else 252
    rows = []
    is_days, oos_days = _days(matrix.range_start, matrix.split_at), _days(matrix.split_at, matrix.range_end)
    for offset, params in enumerate(sets):
        common = dict(
            strategy=matrix.strategy,
            params=params,
            model=model,
            capital=float(matrix.starting_capital),
            days_per_year=days,
        )
        is_metrics = evaluate(legs=in_sample, range_days=is_days, **common)
        oos_metrics = evaluate(legs=out_sample, range_days=oos_days, **common)
        folds = [
            {
                **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in w.items()},
                "in_sample": evaluate(
                    legs=fold_is, range_days=_days(w["in_sample_start"], w["in_sample_end"]), **common
                ),
                "out_of_sample": evaluate(
                    legs=fold_oos, range_days=_days(w["out_of_sample_start"], w["out_of_sample_end"]), **common
                ),
            }
            for w, (fold_is, fold_oos) in zip(windows, fold_legs)
        ]
        summary = walk_forward_summary(folds) if folds else {}
        classification, reasons = classify(
            is_metrics, thresholds=thresholds, oos_metrics=oos_metrics, walk_forward=summary or None
        )
        # The score's own evidence: the out-of-sample trades it was measured on (with folds: all folds').
        scored_trades = summary["out_of_sample_trades"] if folds else oos_metrics.get("number_of_trades")
        rows.append(
            MatrixResult(
                tenant_id=matrix.tenant_id,
                matrix_id=matrix_id,
                index=first + offset,
                parameters=params,
                parameters_hash=get_strategy(matrix.strategy).parameters_hash(params),
                in_sample=is_metrics,
                out_of_sample=oos_metrics,
                folds=folds,
                walk_forward=summary,
                classification=str(classification),
                classification_reasons=reasons,
                scored_trades=scored_trades,
                enough_trades=enough_trades(scored_trades, thresholds),
                score=summary["mean_out_of_sample_sharpe"] if folds else oos_metrics.get("sharpe"),
            )
        )
    with transaction.atomic():
        matrix = BacktestMatrix.objects.select_for_update().get(pk=matrix_id)
        # Checked again under the matrix's lock: two runs of one chunk (an outbox message sent twice) may both have
        # passed the check above; only the first to get here counts the chunk.
        if matrix.status != RunStatus.RUNNING or MatrixResult.objects.filter(matrix_id=matrix_id, index=first).exists():
            return 0
        created = MatrixResult.objects.bulk_create(rows, ignore_conflicts=True)
        MatrixChunk.objects.filter(matrix_id=matrix_id, first=first).update(finished_at=timezone.now())
        matrix.sets_done = F("sets_done") + len(rows)
        matrix.folds_done = F("folds_done") + len(rows) * matrix.walk_forward_folds
        matrix.chunks_done = F("chunks_done") + 1
        matrix.save(update_fields=["sets_done", "folds_done", "chunks_done"])
        matrix.refresh_from_db()
        if matrix.chunks_done >= matrix.chunks_total:
            matrix.status, matrix.finished_at = RunStatus.FINISHED, timezone.now()
            matrix.save(update_fields=["status", "finished_at"])
            audit_record(
                action="backtest_matrix.finish",
                resource_type="backtest_matrix",
                resource_id=matrix.id,
                actor_name="worker",
                before={"status": RunStatus.RUNNING},
                after={"status": matrix.status, "sets": matrix.sets_done},
            )
    return len(created)


def _matrix_fail(matrix_id: int, code: ErrorCode, message: str) -> None:
    with transaction.atomic():
        matrix = BacktestMatrix.objects.select_for_update().get(pk=matrix_id)
        if matrix.status != RunStatus.RUNNING:
            return
        matrix.status, matrix.error_code, matrix.error_message = RunStatus.FAILED, str(code), message
        matrix.finished_at = timezone.now()
        matrix.save(update_fields=["status", "error_code", "error_message", "finished_at"])
        audit_record(
            action="backtest_matrix.fail",
            resource_type="backtest_matrix",
            resource_id=matrix.id,
            actor_name="worker",
            before={"status": RunStatus.RUNNING},
            after={"status": matrix.status, "error_code": str(code)},
        )


def _chunk_overdue(chunk: MatrixChunk, *, now: datetime) -> ErrorCode | None:
    """Why an unfinished chunk needs the sweep, or None. Never started: its latest dispatch reached the broker
    over ``QUEUED_WORK_STALE_SECONDS`` ago and no worker began it (a dispatch the relay has not sent yet is the
    outbox's to deliver, however long the broker is down). Lost mid-run: begun over ``JOB_LEASE_SECONDS`` ago and
    never finished (its worker died; a chunk that is merely slow runs again harmlessly, as a sent-twice one does)."""
    if chunk.started_at is not None:
        lost = chunk.started_at < now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
        return ErrorCode.JOB_LEASE_EXPIRED if lost else None
    sent_at = chunk.last_dispatch.sent_at if chunk.last_dispatch is not None else None
    if sent_at is not None and sent_at < now - timedelta(seconds=settings.QUEUED_WORK_STALE_SECONDS):
        return ErrorCode.JOB_NEVER_STARTED
    return None


def sweep_matrix_chunks(*, now: datetime | None = None) -> dict[str, int]:
    """Unfinished chunks of the tenant's RUNNING matrices that never started or were lost mid-run: sent again
    while they have had fewer than ``JOB_MAX_ATTEMPTS`` dispatches (a chunk is safe to run twice), else their
    matrix FAILS with the chunk's code, so no matrix stays RUNNING at k of n chunks for ever."""
    now = now or timezone.now()
    counts = {"redispatched": 0, "matrices_failed": 0}
    with transaction.atomic():
        candidates = list(
            MatrixChunk.objects.filter(finished_at__isnull=True, matrix__status=RunStatus.RUNNING).values_list(
                "id", flat=True
            )
        )
    for chunk_id in candidates:
        with transaction.atomic():
            chunk = (
                MatrixChunk.objects.select_for_update(of=("self",))
                .select_related("matrix", "last_dispatch")
                .filter(pk=chunk_id, finished_at__isnull=True, matrix__status=RunStatus.RUNNING)
                .first()
            )
            code = None if chunk is None else _chunk_overdue(chunk, now=now)
            if code is None:
                continue
            before = {"dispatches": chunk.dispatches, "started_at": chunk.started_at and chunk.started_at.isoformat()}
            if chunk.dispatches < settings.JOB_MAX_ATTEMPTS:
                chunk.last_dispatch = dispatch_chunk(chunk.matrix, chunk.first, chunk.stop)
                chunk.dispatches += 1
                chunk.started_at = None
                chunk.save(update_fields=["last_dispatch", "dispatches", "started_at"])
                audit_record(
                    action="backtest_matrix.chunk_redispatched",
                    resource_type="backtest_matrix",
                    resource_id=chunk.matrix_id,
                    actor_name="watchdog",
                    before=before,
                    after={"dispatches": chunk.dispatches, "sets": [chunk.first, chunk.stop], "reason": str(code)},
                )
                counts["redispatched"] += 1
                continue
        what = "never started" if code == ErrorCode.JOB_NEVER_STARTED else "stopped before finishing"
        _matrix_fail(
            chunk.matrix_id,
            code,
            f"Sets {chunk.first}-{chunk.stop} {what} after {chunk.dispatches} "
            f"dispatch(es); the matrix cannot finish without them.",
        )
        counts["matrices_failed"] += 1
    return counts


def sweep_matrix_chunks_all_tenants(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """The chunk sweep over every tenant, one tenant context at a time (RLS shows each only its own rows)."""
    results = {}
    for tenant_id in all_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            try:
                results[tenant_id] = sweep_matrix_chunks(now=now)
            except Exception:
                logger.exception("matrix chunk sweep failed for a tenant", extra={"tenant_id": tenant_id})
    return results


Legs = list[tuple[Instrument, Bars]]
