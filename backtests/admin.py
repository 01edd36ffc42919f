"""The research side in the observatory: backtest runs, matrices and their results, lab experiments, autonomy
scores and the tenant's classification thresholds. Read-only: every change goes through the API's services.

Rows are the active admin tenant's only (RLS and the scoped managers, as on every other admin page).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from backtests import lab
from backtests.models import (
    TERMINAL_RUN_STATUSES,
    AutonomyScore,
    BacktestMatrix,
    BacktestRun,
    ClassificationSettings,
    LabExperiment,
    MatrixChunk,
    MatrixResult,
    RunStatus,
)
from backtests.report import backtest_report, matrix_progress, matrix_report, progress
from backtests.selectors import RANKING, ranked_results
from controlplane.admin import ObservatoryAdmin, ReadOnlyInline
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.trace import current_trace_id


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


# The equity curve, trades and counts are drawn by the report above the form (backtests/report.py), not dumped.
_RUN_BULK_FIELDS = ("equity_curve", "trades", "no_trade_counts", "metrics", "classification_reasons")


@admin.register(BacktestRun)
class BacktestRunAdmin(ObservatoryAdmin):
    """The backtest report: progress (polled while QUEUED or RUNNING), classification checks against their
    thresholds, equity and drawdown charts (unfold's bundled Chart.js, served locally), metrics with the reason
    for each missing one, bars without an order per reason and month, and the trades."""

    change_form_template = "backtests/backtest_report.html"
    list_display = (
        "id",
        "strategy",
        "bot_link",
        "purpose",
        "status",
        "progress",
        "classification",
        "sharpe",
        "trades_count",
        "instruments",
        "timeframe",
        "engine_path",
        "error_code",
        "created_at",
    )
    list_filter = ("status", ClassificationFilter, "purpose", "strategy", "timeframe", "engine_path")
    search_fields = ("strategy", "bot__name", "trace_id", "created_by", "parameters_hash")
    list_select_related = ("bot",)
    raw_id_fields = ("bot", "job")
    date_hierarchy = "created_at"
    exclude = _RUN_BULK_FIELDS
    readonly_fields = [f.name for f in BacktestRun._meta.fields if f.name not in _RUN_BULK_FIELDS] + ["trades_count"]

    @admin.display(description="bot", ordering="bot__name")
    def bot_link(self, run: BacktestRun) -> str:
        return _link("bots_bot", run.bot_id, run.bot.name if run.bot_id else "")

    def get_urls(self):
        panel = path(
            "<int:object_id>/progress/",
            self.admin_site.admin_view(self.progress_panel),
            name="backtests_backtestrun_progress",
        )
        return [panel, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if run is not None:
            extra_context = {
                **(extra_context or {}),
                "report": backtest_report(run),
                "progress_url": reverse("admin:backtests_backtestrun_progress", args=[run.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def progress_panel(self, request, object_id: int):
        """The progress card alone, for htmx every 5 s; once the run ends the page reloads to show the report."""
        run = self.get_object(request, str(object_id))
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        response = TemplateResponse(
            request, "backtests/backtest_progress.html", {"progress": progress(run), "progress_url": request.path}
        )
        if run.status in TERMINAL_RUN_STATUSES:
            response["HX-Refresh"] = "true"
        return response

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
    list_display = (
        "id",
        "strategy",
        "mode",
        "instruments",
        "timeframe",
        "status",
        "progress",
        "sets_total",
        "walk_forward_folds",
        "results_link",
        "error_code",
        "created_at",
    )
    list_filter = ("status", "mode", "strategy", "timeframe")
    search_fields = ("strategy", "trace_id", "created_by")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in BacktestMatrix._meta.fields if f.name != "sets_dropped"] + ["results_link"]
    exclude = ("sets_dropped",)
    change_form_template = "backtests/matrix_report.html"

    def get_urls(self):
        panel = path(
            "<int:object_id>/progress/",
            self.admin_site.admin_view(self.progress_panel),
            name="backtests_backtestmatrix_progress",
        )
        return [panel, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Progress, combinations requested / valid / dropped and why, the score heatmap over the two parameters
        picked (``?x=&y=``), and the results in the API's ranking with in- and out-of-sample side by side."""
        matrix = self.get_object(request, object_id)
        if matrix is not None:
            report = matrix_report(matrix, list(ranked_results(matrix)), x=request.GET.get("x"), y=request.GET.get("y"))
            extra_context = {
                **(extra_context or {}),
                "report": report,
                "min_days": settings.METRICS_MIN_DAYS_FOR_ANNUALIZED,
                "progress_url": reverse("admin:backtests_backtestmatrix_progress", args=[matrix.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def progress_panel(self, request, object_id: int):
        matrix = self.get_object(request, str(object_id))
        if matrix is None or not self.has_view_permission(request, matrix):
            raise Http404
        response = TemplateResponse(
            request,
            "backtests/matrix_progress.html",
            {"progress": matrix_progress(matrix), "progress_url": request.path},
        )
        if matrix.status in TERMINAL_RUN_STATUSES:  # the page reloads into the final ranking and heatmap
            response["HX-Refresh"] = "true"
        return response

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
    """One matrix's results in the API's ranking (backtests.selectors.RANKING): enough trades first, then score."""

    list_display = (
        "index",
        "matrix_link",
        "parameters",
        "classification",
        "score",
        "enough_trades",
        "scored_trades",
        "in_sample_sharpe",
        "out_of_sample_sharpe",
        "in_sample_trades",
        "out_of_sample_trades",
    )
    list_filter = (ClassificationFilter, "matrix__strategy")
    search_fields = ("parameters_hash", "=matrix__id")
    list_select_related = ("matrix",)
    raw_id_fields = ("matrix",)
    ordering = ("matrix", *RANKING)

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


LAB_CANDIDATES_SHOWN = 20


def _lab_steps(experiment: LabExperiment) -> list[dict]:
    order = [LabExperiment.Status.DRAFT, LabExperiment.Status.RUNNING, LabExperiment.Status.SHORTLISTED]
    at = order.index(experiment.status)
    has_bot = any(c.get("bot_id") for c in experiment.shortlist or [])
    steps = [
        {"key": key, "label": label, "state": "done" if i < at else "current" if i == at else "upcoming"}
        for i, (key, label) in enumerate(
            (("draft", "Draft"), ("running", "Matrix running"), ("shortlisted", "Shortlisted"))
        )
    ]
    # Running is over once its matrix has finished: the shortlist is the step to take.
    if (
        experiment.status == LabExperiment.Status.RUNNING
        and experiment.matrix
        and experiment.matrix.status == RunStatus.FINISHED
    ):
        steps[1]["state"], steps[2]["state"] = "done", "current"
    if experiment.status == LabExperiment.Status.SHORTLISTED:
        steps[2]["state"] = "done"
    steps.append(
        {
            "key": "bot",
            "label": "Bot created",
            "state": "done"
            if has_bot
            else "current"
            if experiment.status == LabExperiment.Status.SHORTLISTED
            else "upcoming",
        }
    )
    return steps


@admin.register(LabExperiment)
class LabExperimentAdmin(ObservatoryAdmin):
    """An experiment's steps (draft, running, shortlisted, bot created), each with its action for operators,
    through the lab services the API calls; a refusal shows its code, fix and trace id."""

    list_display = (
        "id",
        "name",
        "strategy",
        "status",
        "matrix_link",
        "shortlisted",
        "instruments",
        "timeframe",
        "created_by",
        "updated_at",
    )
    list_filter = ("status", "strategy", "timeframe")
    search_fields = ("name", "hypothesis", "strategy", "created_by")
    raw_id_fields = ("matrix",)
    change_form_template = "backtests/lab_experiment.html"

    def get_urls(self):
        step = path(
            "<int:object_id>/step/", self.admin_site.admin_view(self.take_step), name="backtests_labexperiment_step"
        )
        return [step, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        experiment = self.get_object(request, object_id)
        if experiment is not None:
            matrix = experiment.matrix
            candidates = (
                list(ranked_results(matrix)[:LAB_CANDIDATES_SHOWN])
                if matrix and matrix.status == RunStatus.FINISHED
                else []
            )
            extra_context = {
                **(extra_context or {}),
                "lab": {
                    "steps": _lab_steps(experiment),
                    "candidates": candidates,
                    "matrix_status": matrix.status if matrix else None,
                    "can_operate": self.has_operate_permission(request),
                    "action_url": reverse("admin:backtests_labexperiment_step", args=[experiment.pk]),
                },
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def take_step(self, request, object_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_operate_permission(request):
            raise PermissionDenied
        step = request.POST.get("step")
        try:
            if step == "run":
                lab.experiment_run(experiment_id=object_id, actor=request.user)
                done = "Matrix started."
            elif step == "shortlist":
                indexes = [int(i) for i in request.POST.getlist("indexes") if i.isdigit()]
                lab.experiment_shortlist(experiment_id=object_id, actor=request.user, indexes=indexes)
                done = f"Shortlisted {len(indexes)} candidate(s)."
            elif step == "create_bot":
                index = request.POST.get("index", "")
                _, bot = lab.experiment_create_bot(
                    experiment_id=object_id,
                    actor=request.user,
                    index=int(index) if index.isdigit() else -1,
                    name=request.POST.get("name", "").strip(),
                )
                done = f"Bot {bot.id} ({bot.name}) created."
            else:
                raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"step": ["Unknown step."]})
        except ControlPlaneError as exc:
            details = f" {exc.details}" if exc.details else ""
            self.message_user(
                request,
                f"Refused: {exc.code}: {exc.message}{details} Fix: {exc.suggested_fix} (trace {current_trace_id()})",
                level=messages.ERROR,
            )
        else:
            self.message_user(request, done, level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:backtests_labexperiment_change", args=[object_id]))

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
