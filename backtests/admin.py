"""The research side in the observatory: backtest runs, matrices and their results, lab experiments, autonomy
scores and the tenant's classification thresholds. Read-only: every change goes through the API's services.

Rows are the active admin tenant's only (RLS and the scoped managers, as on every other admin page).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from backtests.models import (
    AutonomyScore,
    BacktestMatrix,
    BacktestRun,
    ClassificationSettings,
    LabExperiment,
    MatrixChunk,
    MatrixResult,
)
from controlplane.admin import ObservatoryAdmin, ReadOnlyInline


def _link(app_model: str, pk: int | None, label) -> str:
    if pk is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse(f"admin:{app_model}_change", args=[pk]), label)


def _percent(done: int, total: int) -> str:
    return f"{done / total:.0%}" if total else "—"


def _metric(metrics: dict, name: str):
    value = (metrics or {}).get(name)
    return round(value, 3) if isinstance(value, float) else value


class ClassificationFilter(admin.SimpleListFilter):
    """PASS / MARGINAL / FAIL, and runs not classified (yet, or because they failed)."""

    title = "classification"
    parameter_name = "classified"

    def lookups(self, request, model_admin):
        return [("PASS", "PASS"), ("MARGINAL", "MARGINAL"), ("FAIL", "FAIL"), ("none", "Not classified")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(classification="")
        if self.value():
            return queryset.filter(classification=self.value())
        return queryset


# The full equity curve and trade list are the API's (GET /api/backtests/{id}); the page keeps to a summary.
_RUN_BULK_FIELDS = ("equity_curve", "trades")


@admin.register(BacktestRun)
class BacktestRunAdmin(ObservatoryAdmin):
    list_display = ("id", "strategy", "bot_link", "purpose", "status", "progress", "classification", "sharpe",
                    "trades_count", "instruments", "timeframe", "engine_path", "error_code", "created_at")
    list_filter = ("status", ClassificationFilter, "purpose", "strategy", "timeframe", "engine_path")
    search_fields = ("strategy", "bot__name", "trace_id", "created_by", "parameters_hash")
    list_select_related = ("bot",)
    raw_id_fields = ("bot", "job", "result")
    date_hierarchy = "created_at"
    exclude = _RUN_BULK_FIELDS
    readonly_fields = [f.name for f in BacktestRun._meta.fields if f.name not in _RUN_BULK_FIELDS] + ["trades_count"]

    @admin.display(description="bot", ordering="bot__name")
    def bot_link(self, run: BacktestRun) -> str:
        return _link("bots_bot", run.bot_id, run.bot.name if run.bot_id else "")

    @admin.display(description="progress")
    def progress(self, run: BacktestRun) -> str:
        return _percent(run.bars_done, run.bars_total)

    @admin.display(description="Sharpe")
    def sharpe(self, run: BacktestRun):
        return _metric(run.metrics, "sharpe")

    @admin.display(description="trades")
    def trades_count(self, run: BacktestRun):
        return _metric(run.metrics, "number_of_trades")


class MatrixChunkInline(ReadOnlyInline):
    """Each chunk's dispatches and whether a worker began and finished it: a RUNNING matrix that does not move
    shows here which sets are waiting, and the sweep's re-sends show as dispatches above one."""

    model = MatrixChunk
    fields = ("first", "stop", "dispatches", "sent_at", "started_at", "finished_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("last_dispatch")

    @admin.display(description="latest dispatch sent")
    def sent_at(self, chunk: MatrixChunk):
        if chunk.last_dispatch is None:
            return "unknown"
        return chunk.last_dispatch.sent_at or "not yet (the outbox relay retries)"


@admin.register(BacktestMatrix)
class BacktestMatrixAdmin(ObservatoryAdmin):
    inlines = [MatrixChunkInline]
    list_display = ("id", "strategy", "mode", "instruments", "timeframe", "status", "progress", "sets_total",
                    "walk_forward_folds", "results_link", "error_code", "created_at")
    list_filter = ("status", "mode", "strategy", "timeframe")
    search_fields = ("strategy", "trace_id", "created_by")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in BacktestMatrix._meta.fields] + ["results_link"]

    @admin.display(description="progress")
    def progress(self, matrix: BacktestMatrix) -> str:
        if matrix.folds_total:
            return _percent(matrix.folds_done, matrix.folds_total)
        return _percent(matrix.sets_done, matrix.sets_total)

    @admin.display(description="results")
    def results_link(self, matrix: BacktestMatrix) -> str:
        url = reverse("admin:backtests_matrixresult_changelist")
        return format_html('<a href="{}?matrix__id__exact={}">ranked results</a>', url, matrix.id)


@admin.register(MatrixResult)
class MatrixResultAdmin(ObservatoryAdmin):
    """One matrix's results, best out-of-sample score first (the API's ranking)."""

    list_display = ("index", "matrix_link", "parameters", "classification", "score", "in_sample_sharpe",
                    "out_of_sample_sharpe", "in_sample_trades", "out_of_sample_trades")
    list_filter = (ClassificationFilter, "matrix__strategy")
    search_fields = ("parameters_hash", "=matrix__id")
    list_select_related = ("matrix",)
    raw_id_fields = ("matrix",)
    ordering = ("matrix", "-score", "index")

    @admin.display(description="matrix", ordering="matrix")
    def matrix_link(self, result: MatrixResult) -> str:
        return _link("backtests_backtestmatrix", result.matrix_id, f"matrix {result.matrix_id}")

    @admin.display(description="IS Sharpe")
    def in_sample_sharpe(self, result: MatrixResult):
        return _metric(result.in_sample, "sharpe")

    @admin.display(description="OOS Sharpe")
    def out_of_sample_sharpe(self, result: MatrixResult):
        return _metric(result.out_of_sample, "sharpe")

    @admin.display(description="IS trades")
    def in_sample_trades(self, result: MatrixResult):
        return _metric(result.in_sample, "number_of_trades")

    @admin.display(description="OOS trades")
    def out_of_sample_trades(self, result: MatrixResult):
        return _metric(result.out_of_sample, "number_of_trades")


@admin.register(LabExperiment)
class LabExperimentAdmin(ObservatoryAdmin):
    list_display = ("id", "name", "strategy", "status", "matrix_link", "shortlisted", "instruments", "timeframe",
                    "created_by", "updated_at")
    list_filter = ("status", "strategy", "timeframe")
    search_fields = ("name", "hypothesis", "strategy", "created_by")
    raw_id_fields = ("matrix",)

    @admin.display(description="matrix")
    def matrix_link(self, experiment: LabExperiment) -> str:
        return _link("backtests_backtestmatrix", experiment.matrix_id, f"matrix {experiment.matrix_id}")

    @admin.display(description="shortlisted")
    def shortlisted(self, experiment: LabExperiment) -> int:
        return len(experiment.shortlist or [])


@admin.register(AutonomyScore)
class AutonomyScoreAdmin(ObservatoryAdmin):
    list_display = ("id", "bot_link", "tier", "score", "failed_gates", "trigger", "computed_at")
    list_filter = ("tier", "trigger")
    search_fields = ("bot__name", "trace_id")
    list_select_related = ("bot",)
    raw_id_fields = ("bot",)
    date_hierarchy = "computed_at"

    @admin.display(description="bot", ordering="bot__name")
    def bot_link(self, score: AutonomyScore) -> str:
        return _link("bots_bot", score.bot_id, score.bot.name)

    @admin.display(description="failed gates")
    def failed_gates(self, score: AutonomyScore) -> str:
        return ", ".join(f"{g['tier']} {g['gate']}" for g in score.gates if not g["passed"]) or "—"


@admin.register(ClassificationSettings)
class ClassificationSettingsAdmin(ObservatoryAdmin):
    """The tenant's overrides of the classification thresholds (PUT /api/backtests/thresholds changes them)."""

    list_display = ("tenant", "thresholds", "updated_by", "updated_at")
