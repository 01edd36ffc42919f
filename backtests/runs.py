"""Running one backtest: the job handler a worker calls, the engine over each instrument's bars, the report,
the classification, the decision traces, and beat's re-backtest of PAPER and LIVE bots for decay."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from backtests.classification import classify
from backtests.data import find_gaps, load_bars
from backtests.engine import EngineResult, run_reference, run_vectorized, ts_to_datetimes, vectorizable
from backtests.metrics import TradeResult, compute_metrics
from backtests.models import BacktestRun, GapPolicy, RunStatus
from backtests.services import backtest_create, tenant_thresholds, validated_config
from bots.models import Bot, Job
from bots.strategies import Bars, get_strategy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from execution.fill_model import FillAt, FillModel
from execution.models import Instrument
from traces.models import TickTrace
from traces.writer import TraceRow, write_traces

logger = logging.getLogger(__name__)


EQUITY_CURVE_POINTS = 2000


class _Cancelled(Exception):
    pass


def backtest_job_handler(job: Job) -> dict:
    """The BACKTEST job kind: run the backtest the job names."""
    return backtest_execute(run_id=job.params["backtest_run_id"])


@dataclass
class InstrumentRun:
    instrument: Instrument
    bars: Bars
    result: EngineResult


def backtest_execute(*, run_id: int) -> dict:
    """Claim a QUEUED run and run it. A second call, or a call after a cancel, does nothing."""
    with transaction.atomic():
        claimed = BacktestRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=timezone.now()
        )
        if claimed != 1:
            run = BacktestRun.objects.filter(pk=run_id).first()
            return {"backtest_run_id": run_id, "status": run.status if run else "MISSING"}
        run = BacktestRun.objects.get(pk=run_id)
        audit_record(
            action="backtest.start",
            resource_type="backtest_run",
            resource_id=run.id,
            actor_name="worker",
            before={"status": RunStatus.QUEUED},
            after={"status": RunStatus.RUNNING},
        )
    try:
        return _execute(run)
    except _Cancelled:
        return {"backtest_run_id": run.id, "status": RunStatus.CANCELLED}
    except ControlPlaneError as exc:
        _fail(
            run.id,
            str(exc.code),
            exc.message,
            gaps=(exc.details or {}).get("gaps") if isinstance(exc.details, dict) else None,
        )
        raise
    except Exception as exc:
        logger.exception("backtest crashed", extra={"backtest_run_id": run.id})
        _fail(run.id, str(ErrorCode.INTERNAL_ERROR), f"{type(exc).__name__}: {exc}")
        raise


def _fail(run_id: int, code: str, message: str, gaps: list | None = None) -> None:
    with transaction.atomic():
        run = BacktestRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING:
            return
        run.status, run.error_code, run.error_message, run.finished_at = RunStatus.FAILED, code, message, timezone.now()
        if gaps is not None:
            run.gaps = gaps
        run.save(update_fields=["status", "error_code", "error_message", "finished_at", "gaps"])
        audit_record(
            action="backtest.fail",
            resource_type="backtest_run",
            resource_id=run.id,
            actor_name="worker",
            before={"status": RunStatus.RUNNING},
            after={"status": run.status, "error_code": code},
        )


def _progress(run_id: int, done: int) -> None:
    """Write progress in its own transaction; stop when the run was cancelled meanwhile."""
    with transaction.atomic():
        updated = BacktestRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(bars_done=done)
    if updated != 1:
        raise _Cancelled


def run_engine(
    *,
    strategy_name: str,
    params: dict,
    bars: Bars,
    instrument: Instrument,
    model: FillModel,
    capital: float,
    progress=None,
) -> EngineResult:
    """The vectorized path where it applies, else the bar-by-bar reference (same orders and fills either way)."""
    strategy = get_strategy(strategy_name)
    kwargs = dict(model=model, tick_size=instrument.tick_size, multiplier=instrument.multiplier, capital=capital)
    if vectorizable(strategy, model, instrument.tick_size):
        return run_vectorized(strategy, params, bars, **kwargs)
    return run_reference(strategy, params, bars, progress=progress, **kwargs)


def _execute(run: BacktestRun) -> dict:
    _, _, model = validated_config(
        strategy=run.strategy,
        parameters=run.parameters,
        instruments=run.instruments,
        timeframe=run.timeframe,
        start=run.range_start,
        end=run.range_end,
        fill_model=run.fill_model,
    )
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=run.instruments)}
    loaded, gaps = [], []
    for symbol in run.instruments:
        instrument = instruments[symbol]
        bars = load_bars(instrument=instrument, timeframe=run.timeframe, start=run.range_start, end=run.range_end)
        gaps += find_gaps(
            instrument=instrument, timeframe=run.timeframe, start=run.range_start, end=run.range_end, ts=bars.ts
        )
        loaded.append((instrument, bars))
    empty = [i.symbol for i, b in loaded if len(b) < 2]
    if empty:
        raise ControlPlaneError(
            ErrorCode.BACKTEST_NO_DATA,
            f"No stored {run.timeframe} bars (at least two needed) for {', '.join(empty)} in the range.",
            details={"instruments": empty, "gaps": gaps},
        )
    if gaps and run.gap_policy == GapPolicy.REFUSE:
        raise ControlPlaneError(
            ErrorCode.BACKTEST_DATA_GAPS,
            f"The range has {len(gaps)} gaps in the stored bars; nothing was run.",
            details={"gaps": gaps},
        )
    total = sum(len(b) for _, b in loaded)
    with transaction.atomic():
        BacktestRun.objects.filter(pk=run.id).update(bars_total=total, gaps=gaps)
    done_before = 0
    runs: list[InstrumentRun] = []
    for instrument, bars in loaded:
        offset = done_before
        result = run_engine(
            strategy_name=run.strategy,
            params=run.parameters,
            bars=bars,
            instrument=instrument,
            model=model,
            capital=float(run.starting_capital),
            progress=lambda done, offset=offset: _progress(run.id, offset + done),
        )
        done_before += len(bars)
        _progress(run.id, done_before)
        runs.append(InstrumentRun(instrument, bars, result))
    report = build_report(
        runs, capital=float(run.starting_capital), range_days=(run.range_end - run.range_start).total_seconds() / 86400
    )
    classification, reasons = classify(report["metrics"], thresholds=tenant_thresholds())
    return _finish(run, runs, report, str(classification), reasons)


def combined_equity(runs: list[InstrumentRun], capital: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(timestamps, equity, exposed) over the union of the instruments' bars; each one's PnL carried forward."""
    stamps = np.unique(np.concatenate([r.bars.ts.astype("datetime64[us]") for r in runs]))
    equity = np.full(len(stamps), capital)
    exposed = np.zeros(len(stamps), dtype=bool)
    for r in runs:
        where = np.searchsorted(r.bars.ts.astype("datetime64[us]"), stamps, side="right") - 1
        seen = where >= 0
        equity[seen] += r.result.equity[where[seen]] - capital
        exposed[seen] |= r.result.position[where[seen]] != 0
    return stamps, equity, exposed


def build_report(runs: list[InstrumentRun], *, capital: float, range_days: float | None = None) -> dict:
    stamps, equity, exposed = combined_equity(runs, capital)
    times = ts_to_datetimes(stamps)
    trades, results = [], []
    for r in runs:
        bar_times = ts_to_datetimes(r.bars.ts)
        for t in r.result.trades:
            if t["exit_bar"] is None:
                continue
            results.append(TradeResult(pnl=t["pnl"], fees=t["fees"], slippage=t["slippage"], notional=t["notional"]))
            trades.append(
                {
                    **t,
                    "instrument": r.instrument.symbol,
                    "entry_ts": bar_times[t["entry_bar"]].isoformat(),
                    "exit_ts": bar_times[t["exit_bar"]].isoformat(),
                }
            )
    crypto = all(r.instrument.asset_class == Instrument.AssetClass.CRYPTO for r in runs)
    metrics = compute_metrics(
        timestamps=times,
        equity=equity,
        trades=results,
        exposure_flags=exposed,
        days_per_year=365 if crypto else 252,
        range_days=range_days,
    )
    step = max(1, len(times) // EQUITY_CURVE_POINTS)
    picks = list(range(step - 1, len(times), step))
    if picks[-1] != len(times) - 1:
        picks.append(len(times) - 1)
    curve = [[times[i].isoformat(), round(float(equity[i]), 6)] for i in picks]
    total, by_month = Counter(), defaultdict(Counter)
    for r in runs:
        total.update(r.result.no_trade)
        months = r.bars.ts.astype("datetime64[M]")
        for code, value in (("NO_SIGNAL", 1), ("ALREADY_AT_TARGET", 2)):
            flagged = months[r.result.no_trade_by_bar == value]
            labels, counts = np.unique(flagged, return_counts=True)
            for label, count in zip(labels, counts):
                by_month[str(label)][code] += int(count)
    return {
        "metrics": metrics,
        "equity_curve": curve,
        "trades": trades,
        "no_trade_counts": {"total": dict(total), "by_month": {k: dict(v) for k, v in sorted(by_month.items())}},
        "engine_path": ",".join(sorted({r.result.path for r in runs})),
    }


def _decision_traces(run: BacktestRun, runs: list[InstrumentRun]) -> list[TraceRow]:
    """A decision trace per order: the same decide() call, its target, reason and explaining values."""
    strategy = get_strategy(run.strategy)
    warmup = strategy.warmup_bars(run.parameters)
    rows = []
    for r in runs:
        bar_times = ts_to_datetimes(r.bars.ts)
        for i in r.result.orders:
            start = max(0, i + 1 - warmup)
            window = Bars(
                *(getattr(r.bars, c)[start : i + 1] for c in ("ts", "open", "high", "low", "close", "volume"))
            )
            # next_open: the decision follows this bar's fills; close: its own fill comes after it.
            if model_fills_at_close(run):
                position = float(r.result.position[i - 1]) if i else 0.0
            else:
                position = float(r.result.position[i])
            decision = strategy.decide(run.parameters, window, position)
            rows.append(
                TraceRow(
                    kind=TickTrace.Kind.DECISION,
                    context=TickTrace.Context.BACKTEST,
                    run_ref=run.id,
                    bot_id=run.bot_id,
                    instrument=r.instrument.symbol,
                    timeframe=run.timeframe,
                    bar_ts=bar_times[i],
                    inputs={"position": position, "close": float(r.bars.close[i])},
                    signal={"target": decision.target, "reason": decision.reason, "values": decision.values},
                    trace_id=run.trace_id,
                )
            )
    return rows


def model_fills_at_close(run: BacktestRun) -> bool:
    return FillModel.from_config(run.fill_model).fill_at is FillAt.CLOSE


def _finish(run: BacktestRun, runs: list[InstrumentRun], report: dict, classification: str, reasons: list) -> dict:
    traces = _decision_traces(run, runs)
    with transaction.atomic():
        locked = BacktestRun.objects.select_for_update().get(pk=run.id)
        if locked.status != RunStatus.RUNNING:
            raise _Cancelled
        locked.status, locked.finished_at = RunStatus.FINISHED, timezone.now()
        locked.bars_done = locked.bars_total
        locked.metrics, locked.equity_curve, locked.trades = report["metrics"], report["equity_curve"], report["trades"]
        locked.no_trade_counts, locked.engine_path = report["no_trade_counts"], report["engine_path"]
        locked.classification, locked.classification_reasons = classification, reasons
        locked.save()
        write_traces(traces)
        audit_record(
            action="backtest.finish",
            resource_type="backtest_run",
            resource_id=locked.id,
            actor_name="worker",
            before={"status": RunStatus.RUNNING},
            after={
                "status": locked.status,
                "classification": classification,
                "number_of_trades": report["metrics"]["number_of_trades"],
            },
        )
    return {"backtest_run_id": run.id, "status": RunStatus.FINISHED, "classification": classification}


def decay_rebacktest_sweep() -> list[int]:
    """Re-backtest every PAPER and LIVE bot over the recent window (purpose DECAY). A finished decay run whose
    classification is worse than the PASS the bot was promoted on is the decay flag; the autonomy score's
    ``no_decay`` gate reads it. Runs the bot's current configuration; refused gaps fail the run, visibly."""
    from datetime import timedelta

    from django.conf import settings

    from bots.models import Stage

    end = timezone.now()
    start = end - timedelta(days=settings.BACKTEST_DECAY_LOOKBACK_DAYS)
    with transaction.atomic():
        bots = list(Bot.objects.filter(stage__in=[Stage.PAPER, Stage.LIVE], killed=False))
    created = []
    for bot in bots:
        try:
            run = backtest_create(
                actor=None,
                actor_name="decay-schedule",
                bot_id=bot.id,
                timeframe=bot.timeframe,
                start=start,
                end=end,
                gap_policy=GapPolicy.REPORT,
                fill_model=settings.SIM_VENUE_FILL_MODELS.get("sim", {}),
                purpose=BacktestRun.Purpose.DECAY,
            )
        except ControlPlaneError:
            logger.exception("decay re-backtest not created", extra={"bot_id": bot.id})
            continue
        created.append(run.id)
    return created
