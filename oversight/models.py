"""The supervisor's records: its runs (the platform-level heartbeat), its breach episodes and each tenant's
threshold overrides. The supervisor's logic is in oversight/supervisor/."""

from __future__ import annotations

from django.db import models

from controlplane.models import TenantOwnedModel


class SupervisorRun(models.Model):
    """One sweep of the supervisor over every tenant: the heartbeat system status reads (a finished run within
    ``4 x SUPERVISOR_INTERVAL_SECONDS``). Platform-level, not tenant-owned: one loop watches every tenant.

    ``fence`` is the fencing number: one more than the previous run's, taken while the run holds the advisory lock,
    and written on every breach the run opens or climbs, so an action can always be traced to the one run (and
    the one lock holder) that took it."""

    fence = models.BigIntegerField(unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    tenants = models.PositiveIntegerField(default=0)
    bots = models.PositiveIntegerField(default=0)
    actions = models.PositiveIntegerField(default=0)
    breaches_open = models.PositiveIntegerField(default=0)
    unknown = models.JSONField(
        default=list, blank=True, help_text="What could not be measured: bot, trigger and why, never taken as fine."
    )
    errors = models.JSONField(default=list, blank=True, help_text="Failures of single bots or tenants in this run.")

    class Meta:
        ordering = ["-fence"]

    def __str__(self) -> str:
        return f"supervisor run {self.fence}"


class SupervisorBreach(TenantOwnedModel):
    """One breach episode: a trigger over its threshold for a bot (or the tenant, ``bot`` null) from
    ``first_seen`` until ``cleared_at``. While it is open, later sweeps only move ``last_seen`` (idempotent); it
    climbs one ``step`` when it becomes worse or comes back within the repeat window. Clearing changes no trading
    state: going back down the ladder is the operator's act."""

    class Step(models.IntegerChoices):
        PENDING = 0, "Pending (within its grace period)"
        WARN = 1, "Warn"
        REDUCE_ONLY = 2, "Reduce only"
        HALTED = 3, "Halted"
        DEMOTE = 4, "Demote"
        KILL = 5, "Kill"

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    trigger = models.CharField(max_length=32)
    step = models.PositiveSmallIntegerField(choices=Step.choices)
    worse = models.BooleanField(default=False, help_text="The value went past the worse factor x threshold.")
    value = models.JSONField(null=True, blank=True, help_text="The measured value, or null when unknown.")
    threshold = models.JSONField(null=True, blank=True)
    values = models.JSONField(default=dict, blank=True, help_text="Everything the trigger measured.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    acted_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True, db_index=True)
    run_fence = models.BigIntegerField(help_text="The fence of the supervisor run that last opened or climbed it.")

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bot", "trigger"],
                condition=models.Q(cleared_at__isnull=True),
                name="supervisorbreach_one_open_episode",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.trigger} step {self.get_step_display()} (bot {self.bot_id})"


class SupervisorPolicy(TenantOwnedModel):
    """A tenant's overrides of the supervisor's default thresholds (settings), validated by one schema
    (oversight.supervisor.thresholds)."""

    overrides = models.JSONField(default=dict, blank=True)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="supervisorpolicy_one_per_tenant")]

    def __str__(self) -> str:
        return f"supervisor policy of tenant {self.tenant_id}"
