"""Backtest runs: create (run + job in one transaction), execute on the backtests queue, cancel.

Each state change locks or claims its row and writes its audit event in the same transaction. Progress is written
in short transactions of its own while the run goes, so ``GET /api/backtests/{id}`` sees bars done / total move.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from backtests.classification import BacktestThresholds
from backtests.models import (
    TERMINAL_RUN_STATUSES,
    BacktestMatrix,
    BacktestRun,
    ClassificationSettings,
    GapPolicy,
    RunStatus,
)
from bots import services as bot_services
from bots.models import Bot, Job
from bots.strategies import StrategyParameterError, UnknownStrategy, get_strategy, is_quote_strategy
from bots.timeframes import TIMEFRAME_SECONDS
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.fill_model import FillModel
from execution.models import Instrument

logger = logging.getLogger(__name__)

FILL_MODEL_KEYS = {
    "fill_at",
    "slippage_ticks",
    "slippage_bps",
    "fee_per_unit",
    "fee_bps",
    "max_volume_share",
    "min_quantity_step",
}


def _invalid(field: str, message: str) -> ControlPlaneError:
    return ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={field: [message]})


def validated_config(
    *,
    strategy: str,
    parameters: dict | None,
    instruments: list[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    fill_model: dict | None,
) -> tuple[dict, str, FillModel]:
    """Check a backtest configuration; every problem names its field. Returns (clean parameters, hash, model)."""
    try:
        strat = get_strategy(strategy)
    except UnknownStrategy as exc:
        raise _invalid("strategy", str(exc.args[0])) from None
    if is_quote_strategy(strat):
        raise _invalid("strategy", f"{strategy} scans quotes, not bars: replay it over recorded quotes instead.")
    try:
        clean = strat.validate(parameters or {})
    except StrategyParameterError as exc:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"parameters": exc.errors}) from None
    if timeframe not in TIMEFRAME_SECONDS:
        raise _invalid("timeframe", f"Unknown timeframe; one of {', '.join(TIMEFRAME_SECONDS)}.")
    if not instruments:
        raise _invalid("instruments", "Give at least one instrument.")
    known = set(Instrument.objects.filter(symbol__in=instruments).values_list("symbol", flat=True))
    missing = [s for s in instruments if s not in known]
    if missing:
        raise _invalid("instruments", f"Unknown instruments: {', '.join(missing)}.")
    if start >= end:
        raise _invalid("end", "Must be after start.")
    unknown = set(fill_model or {}) - FILL_MODEL_KEYS
    if unknown:
        raise _invalid(
            "fill_model", f"Unknown keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(FILL_MODEL_KEYS))}."
        )
    try:
        model = FillModel.from_config(fill_model)
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise _invalid("fill_model", f"Invalid fill model: {exc}.") from None
    for name in ("slippage_ticks", "slippage_bps", "fee_bps"):
        if getattr(model, name) < 0:
            raise _invalid("fill_model", f"{name} must not be negative.")
    if model.fee_per_unit < 0 or model.min_quantity_step <= 0 or (model.max_volume_share or 0) < 0:
        raise _invalid("fill_model", "Fees must not be negative, min_quantity_step must be positive.")
    return clean, strat.parameters_hash(clean), model


def tenant_thresholds() -> BacktestThresholds:
    with transaction.atomic():  # the tenant is set per transaction; a worker may call this outside one
        settings_row = ClassificationSettings.objects.first()
    return BacktestThresholds.from_overrides(settings_row.thresholds if settings_row else None)


def thresholds_update(*, actor, overrides: dict) -> ClassificationSettings:
    try:
        BacktestThresholds.from_overrides(overrides)
    except (ValueError, TypeError) as exc:
        raise _invalid("thresholds", str(exc)) from None
    with transaction.atomic():
        row = ClassificationSettings.objects.select_for_update().first()
        before = row.thresholds if row else {}
        if row is None:
            row = ClassificationSettings(thresholds=overrides)
        row.thresholds, row.updated_by = overrides, getattr(actor, "username", "system")
        row.save()
        audit_record(
            action="backtests.thresholds_update",
            resource_type="classification_settings",
            resource_id=row.id,
            actor=actor,
            before=before,
            after=overrides,
        )
    return row


def backtest_create(
    *,
    actor,
    bot_id: int | None = None,
    strategy: str | None = None,
    parameters: dict | None = None,
    instruments: list[str] | None = None,
    timeframe: str | None = None,
    start: datetime,
    end: datetime,
    fill_model: dict | None = None,
    starting_capital: Decimal = Decimal("100000"),
    gap_policy: str = GapPolicy.REFUSE,
    purpose: str = BacktestRun.Purpose.MANUAL,
    actor_name: str | None = None,
) -> BacktestRun:
    """A run and its BACKTEST job, enqueued on commit. With ``bot_id`` the bot's current configuration is used:
    its strategy and parameters always, its instruments and timeframe unless the request names others."""
    with transaction.atomic():
        bot = None
        if bot_id is not None:
            bot = Bot.objects.filter(pk=bot_id).first()
            if bot is None:
                raise _invalid("bot_id", f"No bot {bot_id}.")
            strategy, parameters = bot.strategy, bot.parameters
            instruments = instruments or bot.instruments
            timeframe = timeframe or bot.timeframe
        if not strategy:
            raise _invalid("strategy", "Give a strategy or a bot_id.")
        if starting_capital is None or starting_capital <= 0:
            raise _invalid("starting_capital", "Must be positive.")
        if gap_policy not in GapPolicy.values:
            raise _invalid("gap_policy", f"One of {', '.join(GapPolicy.values)}.")
        clean, params_hash, _ = validated_config(
            strategy=strategy,
            parameters=parameters,
            instruments=list(instruments or []),
            timeframe=timeframe or "",
            start=start,
            end=end,
            fill_model=fill_model,
        )
        run = BacktestRun.objects.create(
            bot=bot,
            purpose=purpose,
            strategy=strategy,
            parameters=clean,
            parameters_hash=params_hash,
            instruments=list(instruments),
            timeframe=timeframe,
            range_start=start,
            range_end=end,
            fill_model=fill_model or {},
            starting_capital=starting_capital,
            gap_policy=gap_policy,
            trace_id=current_trace_id(),
            created_by=getattr(actor, "username", None) or actor_name or "system",
        )
        job = bot_services.job_create(
            kind=Job.Kind.BACKTEST,
            actor=actor,
            actor_name=actor_name,
            bot_id=bot.id if bot else None,
            params={"backtest_run_id": run.id},
        )
        run.job = job
        run.save(update_fields=["job"])
        audit_record(
            action="backtest.create",
            resource_type="backtest_run",
            resource_id=run.id,
            actor=actor,
            actor_name=actor_name,
            after=_snapshot(run),
        )
    return run


def _snapshot(run: BacktestRun) -> dict:
    return {
        "status": run.status,
        "strategy": run.strategy,
        "parameters": run.parameters,
        "instruments": run.instruments,
        "timeframe": run.timeframe,
        "bot_id": run.bot_id,
        "range_start": run.range_start.isoformat(),
        "range_end": run.range_end.isoformat(),
    }


# What a cancel names per kind of research run: the label in its answers, its audit action and resource type.
_CANCEL_NAMES = {
    BacktestRun: ("Backtest", "backtest.cancel", "backtest_run"),
    BacktestMatrix: ("Matrix", "backtest_matrix.cancel", "backtest_matrix"),
}


def run_or_matrix_cancel(*, model: type[BacktestRun | BacktestMatrix], pk: int, actor) -> BacktestRun | BacktestMatrix:
    """Cancel a backtest run or a parameter matrix that has not ended: one rule for both (a terminal one cannot be
    cancelled; the cancel is audited in the same transaction). A run's job is cancelled with it; a matrix's chunks
    see the CANCELLED status and stop."""
    label, action, resource_type = _CANCEL_NAMES[model]
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No {label.lower()} {pk} in this tenant.")
        if row.status in TERMINAL_RUN_STATUSES:
            raise ControlPlaneError(
                ErrorCode.ILLEGAL_TRANSITION,
                f"{label} {row.id} cannot go from {row.status} to CANCELLED.",
                details={"current": row.status, "requested": RunStatus.CANCELLED},
            )
        before = row.status
        row.status, row.finished_at = RunStatus.CANCELLED, timezone.now()
        row.save(update_fields=["status", "finished_at"])
        job_id = getattr(row, "job_id", None)
        if job_id and row.job.status not in Job.TERMINAL_STATUSES:
            bot_services.job_cancel(job_id=job_id, actor=actor)
        audit_record(
            action=action,
            resource_type=resource_type,
            resource_id=row.id,
            actor=actor,
            before={"status": before},
            after={"status": row.status},
        )
    return row
