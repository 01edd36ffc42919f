"""Backtest runs, parameter matrices and per-tenant classification thresholds. State changes live in services.py."""

from __future__ import annotations

from django.db import models

from controlplane.models import TenantOwnedModel


class RunStatus(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


TERMINAL_RUN_STATUSES = (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.CANCELLED)


class GapPolicy(models.TextChoices):
    REFUSE = "refuse", "Refuse a range with missing bars, listing the gaps"
    REPORT = "report", "Run on the stored bars and report the gaps"


class BacktestRun(TenantOwnedModel):
    """One backtest: its configuration, progress while it runs, then metrics, equity curve and trades."""

    class Purpose(models.TextChoices):
        MANUAL = "MANUAL", "Requested"
        DECAY = "DECAY", "Scheduled decay check"

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, null=True, blank=True, related_name="backtest_runs")
    job = models.ForeignKey("bots.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    purpose = models.CharField(max_length=8, choices=Purpose.choices, default=Purpose.MANUAL)
    strategy = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict)
    parameters_hash = models.CharField(max_length=64, db_index=True)
    instruments = models.JSONField(default=list)
    timeframe = models.CharField(max_length=8)
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    fill_model = models.JSONField(default=dict, blank=True)
    starting_capital = models.DecimalField(max_digits=20, decimal_places=2)
    gap_policy = models.CharField(max_length=8, choices=GapPolicy.choices, default=GapPolicy.REFUSE)

    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    bars_done = models.PositiveBigIntegerField(default=0)
    bars_total = models.PositiveBigIntegerField(default=0)
    engine_path = models.CharField(max_length=16, blank=True)
    gaps = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    equity_curve = models.JSONField(default=list, blank=True, help_text="[ts, equity] pairs, at most ~2,000.")
    trades = models.JSONField(default=list, blank=True)
    no_trade_counts = models.JSONField(default=dict, blank=True, help_text="{total: {code: n}, by_month: {...}}")
    classification = models.CharField(max_length=10, blank=True)
    classification_reasons = models.JSONField(default=list, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    trace_id = models.CharField(max_length=64)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"backtest {self.pk} {self.strategy} ({self.status})"


class BacktestMatrix(TenantOwnedModel):
    """A parameter search: grid or random sample, each set run in-sample and out-of-sample, ranked."""

    class Mode(models.TextChoices):
        GRID = "grid", "Grid"
        RANDOM = "random", "Random sample"

    strategy = models.CharField(max_length=64)
    base_parameters = models.JSONField(default=dict, blank=True)
    space = models.JSONField(help_text="grid: {name: [values]}; random: {name: {min, max}} (or a list to pick from)")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    samples = models.PositiveIntegerField(null=True, blank=True)
    seed = models.BigIntegerField(default=0)
    instruments = models.JSONField(default=list)
    timeframe = models.CharField(max_length=8)
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    split_at = models.DateTimeField(help_text="In-sample before, out-of-sample from here.")
    walk_forward_folds = models.PositiveSmallIntegerField(default=0)
    fill_model = models.JSONField(default=dict, blank=True)
    starting_capital = models.DecimalField(max_digits=20, decimal_places=2)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    sets_requested = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Combinations the space asked for (None: a matrix from before it was recorded).",
    )
    sets_total = models.PositiveIntegerField(default=0, help_text="Valid, distinct sets that run.")
    sets_dropped = models.JSONField(
        null=True,
        blank=True,
        help_text="{count, by_reason: {reason: n}, examples: [{parameters, reason}] (at most MAX_DROPPED_EXAMPLES)}",
    )
    sets_done = models.PositiveIntegerField(default=0)
    folds_total = models.PositiveIntegerField(default=0, help_text="Sets × walk-forward folds.")
    folds_done = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    trace_id = models.CharField(max_length=64)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "backtest matrices"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"matrix {self.pk} {self.strategy} ({self.status})"


class MatrixResult(TenantOwnedModel):
    """One parameter set of a matrix: in-sample and out-of-sample metrics side by side, and its classification."""

    matrix = models.ForeignKey(BacktestMatrix, on_delete=models.CASCADE, related_name="results")
    index = models.PositiveIntegerField()
    parameters = models.JSONField()
    parameters_hash = models.CharField(max_length=64)
    in_sample = models.JSONField(default=dict)
    out_of_sample = models.JSONField(default=dict)
    folds = models.JSONField(default=list, blank=True, help_text="Per walk-forward fold: windows, IS and OOS metrics.")
    walk_forward = models.JSONField(default=dict, blank=True, help_text="The folds' aggregate (mean Sharpes, ratio).")
    classification = models.CharField(max_length=10)
    classification_reasons = models.JSONField(default=list)
    score = models.FloatField(
        null=True,
        help_text="Ranking key: out-of-sample Sharpe, or with walk-forward folds "
        "the folds' mean out-of-sample Sharpe (None ranks last).",
    )
    scored_trades = models.PositiveIntegerField(
        null=True, blank=True, help_text="The out-of-sample trades the score was measured on."
    )
    enough_trades = models.BooleanField(
        default=False,
        help_text="scored_trades reaches the classification's "
        "min_trades; a result without ranks below every result with.",
    )

    class Meta:
        ordering = ["matrix", "index"]
        constraints = [models.UniqueConstraint(fields=["matrix", "index"], name="matrixresult_unique_index")]


class MatrixChunk(TenantOwnedModel):
    """One task's share of a matrix, sets [first, stop): a row of its own so that a chunk whose message was lost
    (the broker's data gone) or whose worker died mid-run is found and sent again by the sweep
    (``backtests.matrix_chunks.sweep_matrix_chunks``) instead of leaving its matrix RUNNING forever."""

    matrix = models.ForeignKey(BacktestMatrix, on_delete=models.CASCADE, related_name="chunks")
    first = models.PositiveIntegerField()
    stop = models.PositiveIntegerField()
    dispatches = models.PositiveSmallIntegerField(default=1, help_text="Times it was sent to the backtests queue.")
    last_dispatch = models.ForeignKey(
        "controlplane.OutboxMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker began its latest dispatch.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["matrix", "first"]
        constraints = [models.UniqueConstraint(fields=["matrix", "first"], name="matrixchunk_unique_first")]
        indexes = [
            models.Index(
                fields=["tenant", "matrix"], name="matrixchunk_unfinished", condition=models.Q(finished_at__isnull=True)
            )
        ]


class ClassificationSettings(TenantOwnedModel):
    """A tenant's overrides of the classification thresholds (backtests.classification.BacktestThresholds)."""

    thresholds = models.JSONField(default=dict)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "classification settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="classificationsettings_one_per_tenant")]


class LabExperiment(TenantOwnedModel):
    """The strategy lab: a hypothesis, tested by a matrix, shortlisted, validated out of sample, turned into bots.

    DRAFT → RUNNING (its matrix runs) → SHORTLISTED (candidates chosen, each with its out-of-sample evidence) and
    bots created from candidates stay linked here (``shortlist[i].bot_id``).
    """

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        RUNNING = "RUNNING", "Matrix running"
        SHORTLISTED = "SHORTLISTED", "Shortlisted"

    name = models.CharField(max_length=200)
    hypothesis = models.TextField()
    strategy = models.CharField(max_length=64)
    instruments = models.JSONField(default=list)
    timeframe = models.CharField(max_length=8)
    parameter_space = models.JSONField()
    mode = models.CharField(max_length=8, choices=BacktestMatrix.Mode.choices, default=BacktestMatrix.Mode.GRID)
    samples = models.PositiveIntegerField(null=True, blank=True)
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    split_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    matrix = models.ForeignKey(BacktestMatrix, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    shortlist = models.JSONField(default=list, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]


class AutonomyScore(TenantOwnedModel):
    """A bot's autonomy tier at one moment, with the evidence (breakdown) and each gate's verdict and value."""

    class Trigger(models.TextChoices):
        SCHEDULE = "SCHEDULE", "Scheduled"
        ON_DEMAND = "ON_DEMAND", "On demand"

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="autonomy_scores")
    tier = models.CharField(max_length=2)
    score = models.FloatField(help_text="Share of all gates passed (0..1): progress toward T3.")
    breakdown = models.JSONField()
    gates = models.JSONField()
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    trace_id = models.CharField(max_length=64)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "bot", "-computed_at"], name="autonomyscore_bot_latest_idx")]
