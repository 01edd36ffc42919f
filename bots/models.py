"""Bots and everything that governs their life: stages, kill switches, runners, jobs, reconciliations, and the
backtest results the promotion gate reads. State changes happen only in bots/services.py."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q

from bots.timeframes import Timeframe
from controlplane.books import Book
from controlplane.models import TenantOwnedModel


class Stage(models.TextChoices):
    LAB = "LAB", "Lab"
    BACKTESTED = "BACKTESTED", "Backtested"
    PAPER = "PAPER", "Paper"
    LIVE = "LIVE", "Live"
    RETIRED = "RETIRED", "Retired"


# The promotion ladder; RETIRED is off it (reached by demotion, never left).
STAGE_ORDER = [Stage.LAB, Stage.BACKTESTED, Stage.PAPER, Stage.LIVE]

SIM_VENUE = "sim"
IMPORTED_DATA_SOURCE = "imported"


class Bot(TenantOwnedModel):
    class AutonomyTier(models.TextChoices):
        T0 = "T0", "T0 locked"
        T1 = "T1", "T1 paper only"
        T2 = "T2", "T2 live, reduced limits"
        T3 = "T3", "T3 live"

    name = models.CharField(max_length=200)
    strategy = models.CharField(max_length=64, help_text="A name from the strategy registry (bots.strategies).")
    parameters = models.JSONField(default=dict, help_text="Validated against the strategy's schema.")
    parameters_hash = models.CharField(
        max_length=64, help_text="sha256 of strategy and parameters; backtests match it."
    )
    instruments = models.JSONField(default=list)
    timeframe = models.CharField(
        max_length=8, choices=Timeframe.choices, default=Timeframe.M1, help_text="The bar timeframe the bot ticks on."
    )
    venue = models.CharField(max_length=64, default=SIM_VENUE)
    data_source = models.CharField(max_length=64, default=IMPORTED_DATA_SOURCE)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.LAB, db_index=True)
    autonomy_tier = models.CharField(max_length=2, choices=AutonomyTier.choices, default=AutonomyTier.T0)
    risk_limits = models.JSONField(default=dict, blank=True)

    killed = models.BooleanField(default=False, db_index=True)
    killed_at = models.DateTimeField(null=True, blank=True)
    killed_by = models.CharField(max_length=150, blank=True)
    kill_reason = models.TextField(blank=True)

    reconcile_mismatch = models.BooleanField(
        default=False, help_text="Set by a reconcile that found a difference; blocks starts and new orders."
    )
    live_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    live_approved_at = models.DateTimeField(null=True, blank=True)
    starter_key = models.CharField(max_length=64, blank=True, help_text="Set on bots made by the starter pack.")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="bot_unique_name_per_tenant"),
            models.UniqueConstraint(
                fields=["tenant", "starter_key"], condition=~Q(starter_key=""), name="bot_unique_starter_key_per_tenant"
            ),
        ]
        # The tick finds a batch's bots by instrument (instruments @> '["ES"]').
        indexes = [GinIndex(fields=["instruments"], opclasses=["jsonb_path_ops"], name="bot_instruments_gin")]

    def __str__(self) -> str:
        return f"{self.name} ({self.stage})"

    def snapshot(self) -> dict:
        """The fields an audit event records before and after a change."""
        return {
            "name": self.name,
            "strategy": self.strategy,
            "parameters": self.parameters,
            "instruments": self.instruments,
            "timeframe": self.timeframe,
            "venue": self.venue,
            "data_source": self.data_source,
            "stage": self.stage,
            "killed": self.killed,
            "reconcile_mismatch": self.reconcile_mismatch,
            "risk_limits": self.risk_limits,
            "autonomy_tier": self.autonomy_tier,
        }


class TenantKillSwitch(TenantOwnedModel):
    """The tenant-level kill, latched until an owner unkills it. One row per tenant once first used."""

    killed = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "tenant kill switches"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="tenant_kill_switch_one_per_tenant")]

    def __str__(self) -> str:
        return f"tenant {self.tenant_id} {'KILLED' if self.killed else 'live'}"


class GlobalKillSwitch(models.Model):
    """The platform-wide kill (superusers only). A single row, id 1; not tenant-owned so every tenant reads it."""

    SINGLETON_ID = 1

    killed = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "global kill switches"

    def __str__(self) -> str:
        return f"global {'KILLED' if self.killed else 'live'}"


class CancelRequest(TenantOwnedModel):
    """A kill's request to cancel open orders, for the OMS to process (issue 5). Global kills have no tenant."""

    class Scope(models.TextChoices):
        BOT = "BOT", "Bot"
        TENANT = "TENANT", "Tenant"
        GLOBAL = "GLOBAL", "Global"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    scope = models.CharField(max_length=8, choices=Scope.choices)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, null=True, blank=True, related_name="cancel_requests")

    class Purpose(models.TextChoices):
        KILL = "kill", "Kill switch"
        LEAVE_LIVE = "leave_live", "Leaving LIVE"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    purpose = models.CharField(
        max_length=16,
        choices=Purpose.choices,
        default=Purpose.KILL,
        help_text="leave_live: after cancelling, the OMS records what the venue still holds (execution.orders.live_exit).",
    )
    detail = models.JSONField(
        default=dict,
        blank=True,
        help_text="leave_live: the venue, instruments and stages of the LIVE configuration being left.",
    )
    reason = models.TextField()
    requested_by = models.CharField(max_length=150)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]


class Runner(TenantOwnedModel):
    """A bot's running instance. At most one active (not STOPPED or FAILED) runner per bot."""

    class Status(models.TextChoices):
        STARTING = "STARTING", "Starting"
        RUNNING = "RUNNING", "Running"
        STOPPING = "STOPPING", "Stopping"
        STOPPED = "STOPPED", "Stopped"
        STALE = "STALE", "Stale"
        FAILED = "FAILED", "Failed"

    class Mode(models.TextChoices):
        LIVE = "live", "Live ticks on beat's schedule (paper or live per the bot's stage)"
        REPLAY = "replay", "Replay over a date range of stored bars, as fast as the pipeline allows"

    ACTIVE_STATUSES = (Status.STARTING, Status.RUNNING, Status.STOPPING, Status.STALE)
    TERMINAL_STATUSES = (Status.STOPPED, Status.FAILED)

    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, related_name="runners")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTING, db_index=True)
    started_by = models.CharField(max_length=150)
    started_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_tick_at = models.DateTimeField(null=True, blank=True)
    last_tick_bar_ts = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The bot's newest live tick trace's bar, kept by the tick with its traces (empty until the "
        "runner's first tick): a tick of a newer bar knows without looking that the bot has no trace for it yet.",
    )
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.TextField(blank=True)
    restart_count = models.PositiveIntegerField(default=0)
    consecutive_errors = models.PositiveIntegerField(
        default=0, help_text="Ticks in a row that failed; the circuit breaker kills the bot past its limit."
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.LIVE)
    replay_start = models.DateTimeField(null=True, blank=True)
    replay_end = models.DateTimeField(null=True, blank=True)
    replay_cursor = models.DateTimeField(null=True, blank=True, help_text="The last bar a replay has ticked.")
    parameters_hash = models.CharField(
        max_length=64,
        blank=True,
        help_text="The bot's parameters_hash when the runner started: a replay is evidence for these parameters only.",
    )
    trace_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot"],
                condition=Q(status__in=["STARTING", "RUNNING", "STOPPING", "STALE"]),
                name="runner_one_active_per_bot",
            )
        ]

    def __str__(self) -> str:
        return f"runner {self.pk} of bot {self.bot_id} ({self.status})"


class Job(TenantOwnedModel):
    """Typed long-running work the UI follows. Handlers per kind are registered in bots.job_handlers (the state changes are bots.services.jobs)."""

    class Kind(models.TextChoices):
        BACKTEST = "BACKTEST", "Backtest"
        VERIFY = "VERIFY", "Verify integrations"
        RECONCILE = "RECONCILE", "Reconcile positions"
        TICK_BATCH = "TICK_BATCH", "Tick batch"

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"

    TERMINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, null=True, blank=True, related_name="jobs")
    params = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    trace_id = models.CharField(max_length=64)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["trace_id"], name="job_trace_idx")]  # the trace explorer

    def __str__(self) -> str:
        return f"job {self.pk} {self.kind} ({self.status})"


class Reconciliation(TenantOwnedModel):
    """One comparison of a bot's internal positions in one book with its venue's."""

    class Status(models.TextChoices):
        MATCHED = "MATCHED", "Matched"
        MISMATCH = "MISMATCH", "Mismatch"

    class Resolution(models.TextChoices):
        ACCEPT_VENUE = "accept_venue", "Accept the venue's state"
        FLATTEN = "flatten", "Flatten at the venue"

    class Purpose(models.TextChoices):
        CHECK = "check", "Reconcile"
        LIVE_EXIT = "live_exit", "Left LIVE"

    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, related_name="reconciliations")
    status = models.CharField(max_length=10, choices=Status.choices)
    purpose = models.CharField(
        max_length=16,
        choices=Purpose.choices,
        default=Purpose.CHECK,
        help_text="live_exit: what the venue still held when the bot left LIVE; a MISMATCH one blocks going LIVE "
        "again until it is resolved (flatten or accept_venue).",
    )
    venue = models.CharField(max_length=64)
    book = models.CharField(
        max_length=8,
        choices=Book.choices,
        help_text="The book compared with the venue: paper for a sim venue, live otherwise.",
    )
    internal_positions = models.JSONField(default=dict)
    venue_positions = models.JSONField(default=dict)
    differences = models.JSONField(default=dict)
    is_flat = models.BooleanField(help_text="Both sides hold no position in any instrument.")
    requested_by = models.CharField(max_length=150)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    resolution = models.CharField(
        max_length=16,
        choices=Resolution.choices,
        blank=True,
        help_text="An operator's decision about this mismatch (empty: none yet).",
    )
    resolution_reason = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_detail = models.JSONField(
        null=True,
        blank=True,
        help_text="What the resolution did: the venue snapshot it used, each position before and after, the "
        "flatten orders and their status, and the reconcile that followed.",
    )

    class Meta:
        ordering = ["-id"]
