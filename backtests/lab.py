"""The strategy lab: experiment → matrix → shortlist (with out-of-sample evidence) → a LAB bot per candidate.

Each step is a state transition on a locked row with its audit event. A candidate whose out-of-sample validation
failed (its matrix classification, which includes the out-of-sample / in-sample Sharpe check, is FAIL) cannot
become a bot: that is the point of validating out of sample.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from backtests import matrices
from backtests.models import BacktestMatrix, LabExperiment, MatrixResult, RunStatus
from backtests.services import _invalid, validated_config
from bots import services as bot_services
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record


def _locked(experiment_id: int) -> LabExperiment:
    experiment = LabExperiment.objects.select_for_update().filter(pk=experiment_id).first()
    if experiment is None:
        raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No experiment {experiment_id} in this tenant.")
    return experiment


def _illegal(experiment: LabExperiment, requested: str, why: str) -> ControlPlaneError:
    return ControlPlaneError(
        ErrorCode.ILLEGAL_TRANSITION,
        f"Experiment {experiment.id} cannot go from {experiment.status} to {requested}. {why}",
        details={"current": experiment.status, "requested": requested},
    )


def experiment_create(
    *,
    actor,
    name: str,
    hypothesis: str,
    strategy: str,
    instruments: list[str],
    timeframe: str,
    parameter_space: dict,
    start: datetime,
    end: datetime,
    split_at: datetime,
    mode: str = "grid",
    samples: int | None = None,
) -> LabExperiment:
    validated_config(
        strategy=strategy,
        parameters={},
        instruments=instruments,
        timeframe=timeframe,
        start=start,
        end=end,
        fill_model={},
    )
    if not start < split_at < end:
        raise _invalid("split_at", "Must fall strictly inside the range.")
    matrices.expand_sets(strategy=strategy, base={}, space=parameter_space, mode=mode, samples=samples, seed=0)
    with transaction.atomic():
        experiment = LabExperiment.objects.create(
            name=name,
            hypothesis=hypothesis,
            strategy=strategy,
            instruments=instruments,
            timeframe=timeframe,
            parameter_space=parameter_space,
            mode=mode,
            samples=samples,
            range_start=start,
            range_end=end,
            split_at=split_at,
            created_by=getattr(actor, "username", "system"),
        )
        audit_record(
            action="lab.create",
            resource_type="lab_experiment",
            resource_id=experiment.id,
            actor=actor,
            after={"name": name, "hypothesis": hypothesis, "strategy": strategy, "status": experiment.status},
        )
    return experiment


def experiment_run(*, experiment_id: int, actor) -> LabExperiment:
    with transaction.atomic():
        experiment = _locked(experiment_id)
        if experiment.status != LabExperiment.Status.DRAFT:
            raise _illegal(experiment, LabExperiment.Status.RUNNING, "Only a draft runs its matrix.")
        matrix = matrices.matrix_create(
            actor=actor,
            strategy=experiment.strategy,
            space=experiment.parameter_space,
            mode=experiment.mode,
            samples=experiment.samples,
            instruments=experiment.instruments,
            timeframe=experiment.timeframe,
            start=experiment.range_start,
            end=experiment.range_end,
            split_at=experiment.split_at,
        )
        experiment.matrix, experiment.status = matrix, LabExperiment.Status.RUNNING
        experiment.save(update_fields=["matrix", "status", "updated_at"])
        audit_record(
            action="lab.run",
            resource_type="lab_experiment",
            resource_id=experiment.id,
            actor=actor,
            before={"status": LabExperiment.Status.DRAFT},
            after={"status": experiment.status, "matrix_id": matrix.id},
        )
    return experiment


def experiment_shortlist(*, experiment_id: int, actor, indexes: list[int]) -> LabExperiment:
    """Pick candidates from the finished matrix; each keeps its in-sample and out-of-sample evidence."""
    if not indexes:
        raise _invalid("indexes", "Pick at least one matrix result.")
    with transaction.atomic():
        experiment = _locked(experiment_id)
        if experiment.status not in (LabExperiment.Status.RUNNING, LabExperiment.Status.SHORTLISTED):
            raise _illegal(experiment, LabExperiment.Status.SHORTLISTED, "Run the experiment first.")
        matrix = BacktestMatrix.objects.get(pk=experiment.matrix_id)
        if matrix.status != RunStatus.FINISHED:
            raise _illegal(
                experiment,
                LabExperiment.Status.SHORTLISTED,
                f"Its matrix {matrix.id} is {matrix.status}, not FINISHED.",
            )
        results = {r.index: r for r in MatrixResult.objects.filter(matrix=matrix, index__in=indexes)}
        missing = [i for i in indexes if i not in results]
        if missing:
            raise _invalid("indexes", f"No matrix results {missing}.")
        before = {"status": experiment.status, "shortlist": [c["index"] for c in experiment.shortlist]}
        kept = {c["index"]: c for c in experiment.shortlist}
        experiment.shortlist = [
            kept.get(i)
            or {
                "index": i,
                "parameters": results[i].parameters,
                "parameters_hash": results[i].parameters_hash,
                "classification": results[i].classification,
                "in_sample": results[i].in_sample,
                "out_of_sample": results[i].out_of_sample,
                "oos_validated": results[i].classification != "FAIL",
                "bot_id": None,
            }
            for i in indexes
        ]
        experiment.status = LabExperiment.Status.SHORTLISTED
        experiment.save(update_fields=["shortlist", "status", "updated_at"])
        audit_record(
            action="lab.shortlist",
            resource_type="lab_experiment",
            resource_id=experiment.id,
            actor=actor,
            before=before,
            after={"status": experiment.status, "shortlist": indexes},
        )
    return experiment


def experiment_create_bot(*, experiment_id: int, actor, index: int, name: str):
    """A LAB bot with the candidate's parameters, linked from the experiment's shortlist entry."""
    with transaction.atomic():
        experiment = _locked(experiment_id)
        if experiment.status != LabExperiment.Status.SHORTLISTED:
            raise _illegal(experiment, "BOT_CREATED", "Shortlist candidates first.")
        entry = next((c for c in experiment.shortlist if c["index"] == index), None)
        if entry is None:
            raise _invalid("index", f"Result {index} is not on the shortlist.")
        if not entry["oos_validated"]:
            raise _invalid("index", f"Result {index} failed out-of-sample validation ({entry['classification']}).")
        if entry["bot_id"]:
            raise _invalid("index", f"Bot {entry['bot_id']} was already created from result {index}.")
        bot = bot_services.bot_create(
            actor=actor,
            name=name,
            strategy=experiment.strategy,
            parameters=entry["parameters"],
            instruments=experiment.instruments,
            timeframe=experiment.timeframe,
        )
        entry["bot_id"] = bot.id
        experiment.save(update_fields=["shortlist", "updated_at"])
        audit_record(
            action="lab.create_bot",
            resource_type="lab_experiment",
            resource_id=experiment.id,
            actor=actor,
            after={
                "bot_id": bot.id,
                "index": index,
                "matrix_id": experiment.matrix_id,
                "parameters_hash": entry["parameters_hash"],
                "classification": entry["classification"],
            },
        )
    return experiment, bot
