"""Why a bot traded, or why it did not: exactly one trace per bot per instrument per tick.

One table holds both kinds so that the database itself enforces "exactly one per bot per instrument per bar" (a
unique constraint: a bot on two instruments ticks once per instrument, and a backtest traces each instrument) and
a re-run of the same tick inserts nothing (ON CONFLICT DO NOTHING). ``DecisionTrace`` and ``NoTradeTrace`` are the
two views of it the rest of the code and the API speak of.

Bot and intent ids are plain integers, not foreign keys: traces sit below ``bots`` and ``execution`` in the
dependency order, and at thousands of rows a second a foreign-key check per row is not worth its cost.
"""

from __future__ import annotations

from django.db import models

from controlplane.books import Book
from controlplane.models import TenantOwnedModel, TenantScopedManager


class ReasonCode(models.TextChoices):
    """Why a tick sent no order. One enum, shared by the live tick, replays and backtests."""

    MARKET_CLOSED = "MARKET_CLOSED", "Market closed"
    DATA_UNAVAILABLE = "DATA_UNAVAILABLE", "The bar the tick needs is missing"
    DATA_STALE = "DATA_STALE", "The latest bar is older than the timeframe allows"
    NO_SIGNAL = "NO_SIGNAL", "The strategy gave no signal"
    ALREADY_AT_TARGET = "ALREADY_AT_TARGET", "The position already equals the strategy's target"
    RISK_BLOCKED = "RISK_BLOCKED", "A risk limit refused the order"
    AUTONOMY_NOT_ALLOWED = "AUTONOMY_NOT_ALLOWED", "The system is not OK: no live order may open or grow a position"
    KILLED = "KILLED", "The bot, its tenant or the system is killed"
    RETIRED = "RETIRED", "The bot is retired: it sends no more orders"
    INTEGRATION_MISSING = "INTEGRATION_MISSING", "An integration the bot needs is missing or failing"
    RECONCILE_MISMATCH = "RECONCILE_MISMATCH", "Positions disagree with the venue; orders are blocked"
    COOLDOWN = "COOLDOWN", "The bot is cooling down after a trade or an error"
    TICK_ERROR = "TICK_ERROR", "The tick failed for this bot; the circuit breaker counts these"
    TICK_LATE = "TICK_LATE", "The tick started later than its timeframe allows; it decided nothing"


class TickTrace(TenantOwnedModel):
    # Every index of this table is paid on each of the tick's thousands of inserts a second; the unique index
    # (Meta) leads with tenant_id, so the foreign key's own index would only duplicate it. No foreign key in the
    # database either (migration 0013): its deferred check, one per row at COMMIT, was 3 ms of a 1,000-bot tick's
    # 5 ms COMMIT. What it guaranteed holds otherwise: a row's tenant_id is the transaction's tenant (the forced
    # RLS policy's WITH CHECK), set from a tenant row the writer read (the tick from the bots it ticks, whose own
    # foreign key holds), and a tenant with traces cannot be deleted (a trigger on the tenant table, 0013).
    tenant = models.ForeignKey(
        "controlplane.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )

    class Kind(models.TextChoices):
        DECISION = "decision", "Decision (traded)"
        NO_TRADE = "no_trade", "No trade"

    class Context(models.TextChoices):
        TICK = "tick", "Live or paper tick"
        REPLAY = "replay", "Replay over stored bars"
        BACKTEST = "backtest", "Backtest"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    context = models.CharField(max_length=16, choices=Context.choices, default=Context.TICK)
    run_ref = models.BigIntegerField(null=True, blank=True, help_text="Replay runner or backtest run id.")
    bot_id = models.BigIntegerField(null=True, blank=True)
    instrument = models.CharField(max_length=64)
    timeframe = models.CharField(max_length=8)
    bar_ts = models.DateTimeField()
    reason_code = models.CharField(max_length=32, choices=ReasonCode.choices, null=True, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="For no-trade: which limit, which values.")
    inputs = models.JSONField(default=dict, blank=True)
    signal = models.JSONField(default=dict, blank=True, help_text="The strategy's target and explaining values.")
    risk_checks = models.JSONField(default=list, blank=True)
    intent_id = models.BigIntegerField(null=True, blank=True)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Every index of this table is paid on each insert. The one-per-bar unique index's INCLUDE columns let the
        # runs of a bot's traces be read from it alone (traces.summaries, traces.selectors.why_not_window); the
        # (tenant, bot, -bar_ts) index finds a bot's latest trace (why_not). The table is partitioned by day of
        # bar_ts in the database (migration 0009), where the primary key is (id, bar_ts), which Django need not
        # know: ids come from one sequence, and nothing points at this table.
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bot_id", "instrument", "bar_ts", "context", "run_ref"],
                include=["kind", "reason_code", "intent_id"],
                name="ticktrace_one_per_bot_instrument_bar",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="decision", reason_code__isnull=True)
                    | models.Q(kind="no_trade", reason_code__isnull=False)
                ),
                name="ticktrace_reason_only_for_no_trade",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "bot_id", "-bar_ts"], name="ticktrace_bot_latest_idx")]

    def __str__(self) -> str:
        return f"{self.kind} bot={self.bot_id} {self.instrument} {self.bar_ts:%Y-%m-%d %H:%M} {self.reason_code or ''}"


class _KindManager(TenantScopedManager):
    kind: str

    def get_queryset(self):
        return super().get_queryset().filter(kind=self.kind)


class DecisionManager(_KindManager):
    kind = TickTrace.Kind.DECISION


class NoTradeManager(_KindManager):
    kind = TickTrace.Kind.NO_TRADE


class DecisionTrace(TickTrace):
    objects = DecisionManager()

    class Meta:
        proxy = True


class NoTradeTrace(TickTrace):
    objects = NoTradeManager()

    class Meta:
        proxy = True
        verbose_name = "no-trade trace"


class TraceDayRun(TenantOwnedModel):
    """One run of a bot's live/paper tick traces within one closed UTC day: consecutive traces of one instrument with
    the same no-trade reason, or one decision. Written by ``traces.summaries`` once the day is over, so a window of
    a month reads about 1,500 runs of a bot instead of 43,200 traces; the window stitches runs that meet at
    midnight back together (``traces.selectors.why_not_window``)."""

    bot_id = models.BigIntegerField()
    instrument = models.CharField(max_length=64)
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=TickTrace.Kind.choices)
    reason_code = models.CharField(max_length=32, choices=ReasonCode.choices, null=True, blank=True)
    intent_id = models.BigIntegerField(null=True, blank=True, help_text="A decision's intent.")
    run_start = models.DateTimeField(help_text="Bar of the run's first trace.")
    run_end = models.DateTimeField(help_text="Bar of the run's last trace.")
    length = models.PositiveIntegerField(help_text="Traces in the run.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bot_id", "instrument", "run_start"], name="tracedayrun_one_per_start"
            )
        ]
        indexes = [models.Index(fields=["tenant", "bot_id", "day"], name="tracedayrun_bot_day_idx")]


class TraceDaySummary(TenantOwnedModel):
    """That a tenant's day has its runs in ``TraceDayRun``: the window reads runs for these days and traces for the
    others, so a day without a row is never read as a day without traces."""

    day = models.DateField()
    runs = models.PositiveIntegerField()
    summarized_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "trace day summaries"
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="tracedaysummary_one_per_day")]


class ProfitVariables(TenantOwnedModel):
    """A bot's trading results in one book for one UTC day, kept by the OMS on every fill, for autonomy scoring.

    Here, not in ``execution``, because autonomy scores (this app) read it and may not import upward; like traces,
    ``bot_id`` is a plain integer for the same reason.
    """

    bot_id = models.BigIntegerField()
    book = models.CharField(
        max_length=8,
        choices=Book.choices,
        help_text="paper: the day's sim fills; live: the day's fills at the bot's venue.",
    )
    day = models.DateField()
    pnl = models.DecimalField(max_digits=24, decimal_places=9, default=0, help_text="Realized, after fees.")
    fees = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    slippage = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    turnover = models.DecimalField(max_digits=28, decimal_places=9, default=0, help_text="Traded notional.")
    exposure = models.DecimalField(
        max_digits=28, decimal_places=9, default=0, help_text="Largest absolute notional held after a fill that day."
    )
    fills = models.PositiveIntegerField(default=0)
    closing_trades = models.PositiveIntegerField(default=0, help_text="Fills that closed quantity.")
    winning_trades = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "profit variables"
        ordering = ["bot_id", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "bot_id", "book", "day"], name="profitvariables_one_per_book_day")
        ]

    @property
    def win_rate(self) -> float | None:
        """Winning closes over closes; None when nothing closed (never a fake 0)."""
        return self.winning_trades / self.closing_trades if self.closing_trades else None
