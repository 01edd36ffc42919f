"""The execution app's data: market reference data (global) and what bots do with it (tenant-owned).

Global, with no ``tenant_id``: ``Instrument``, ``Bar`` and ``TickBatch``. A bar of ES is the same fact for every
tenant, and the tick batches per (instrument, timeframe) across all tenants' bots, so one read serves them all.
Tenants never write these through the API; bars come from providers and ``import_bars`` (operators), instruments
from superusers, batch summaries from the tick.

Tenant-owned (``TenantOwnedModel``: ``tenant_id`` and an RLS policy): ``TradingControl``, ``TradeIntent`` and its
legs, ``Order`` and ``Fill`` (written only by the OMS, DESIGN.md invariant 1), ``StrategyPosition``,
``VenueInventory``, ``RiskIncident`` and ``EquityWatermark``. Each class's docstring says what it holds.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from controlplane.books import Book
from controlplane.models import TenantOwnedModel
from execution.marketdata.calendars import validate_calendar_name
from execution.marketdata.data_symbols import validate_data_symbols
from bots.timeframes import Timeframe
from integrations.venue_symbols import validate_venue_symbols


class Instrument(models.Model):
    """A tradable instrument: platform reference data, global (no tenant), edited by superusers only."""

    class AssetClass(models.TextChoices):
        FUTURE = "future", "Future"
        CRYPTO = "crypto", "Crypto"
        EQUITY = "equity", "Equity"
        FX = "fx", "FX"

    symbol = models.CharField(
        max_length=32,
        unique=True,
        help_text="Our name for it: a futures root (ES) is the continuous front contract; crypto as BASE-QUOTE.",
    )
    venue = models.CharField(max_length=32, help_text="Exchange or venue, e.g. CME, COINBASE.")
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices)
    tick_size = models.DecimalField(max_digits=20, decimal_places=10)
    multiplier = models.DecimalField(max_digits=20, decimal_places=6, help_text="Currency value of one point.")
    calendar = models.CharField(
        max_length=64,
        validators=[validate_calendar_name],
        help_text="pandas-market-calendars name (CME_Equity, 24/7, ...); execution.marketdata.calendars.PRODUCT_CALENDARS.",
    )
    data_symbols = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_data_symbols],
        help_text='Its symbol at each market-data provider: {"databento": {"dataset", "symbol", "stype_in"}, '
        '"polygon": {"ticker"}}. No entry: that provider serves no bars for it.',
    )
    venue_symbols = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_venue_symbols],
        help_text="Its market at each crypto venue, from that venue's own market list (manage.py "
        'map_venue_symbols): {"kraken": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": '
        '"spot"}}. No entry: orders for it at that venue are refused (INSTRUMENT_NOT_MAPPED).',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=models.Q(tick_size__gt=0), name="instrument_tick_size_positive"),
            models.CheckConstraint(condition=models.Q(multiplier__gt=0), name="instrument_multiplier_positive"),
        ]

    def __str__(self) -> str:
        return self.symbol


class Bar(models.Model):
    """One OHLCV bar; ``ts`` is the bar's open time (UTC), on the timeframe's grid. Global: the same fact for
    every tenant."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported file"
        DATABENTO = "databento", "Databento"
        POLYGON = "polygon", "Polygon"

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="bars")
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    ts = models.DateTimeField()
    open = models.DecimalField(max_digits=24, decimal_places=9)
    high = models.DecimalField(max_digits=24, decimal_places=9)
    low = models.DecimalField(max_digits=24, decimal_places=9)
    close = models.DecimalField(max_digits=24, decimal_places=9)
    volume = models.DecimalField(max_digits=30, decimal_places=9)
    source = models.CharField(max_length=16, choices=Source.choices)
    ingested_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["instrument", "timeframe", "ts"]
        constraints = [
            # Also the index of every history read: (instrument, timeframe) then ts, scanned backwards.
            models.UniqueConstraint(
                fields=["instrument", "timeframe", "ts"], name="bar_unique_instrument_timeframe_ts"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    low__gt=0,
                    high__gte=models.F("low"),
                    open__gte=models.F("low"),
                    open__lte=models.F("high"),
                    close__gte=models.F("low"),
                    close__lte=models.F("high"),
                    volume__gte=0,
                ),
                name="bar_ohlc_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.timeframe} {self.ts.isoformat()}"


class TickBatch(models.Model):
    """One (instrument, timeframe, as_of) tick batch: the observatory's record of what every tick did.

    Global, like the bars it reads: it holds counts only, no tenant's decisions (those are in the traces). The
    batches of one beat task (up to TICK_BATCH_INSTRUMENTS instruments) run together, so they share the task's
    ``trace_id`` and ``duration_ms`` (the whole task's time).
    """

    instrument_symbol = models.CharField(max_length=64)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    as_of = models.DateTimeField()
    market_open = models.BooleanField(null=True)
    data_problem = models.CharField(max_length=32, blank=True)
    bots = models.PositiveIntegerField(default=0)
    decisions = models.PositiveIntegerField(default=0)
    no_trades = models.PositiveIntegerField(default=0)
    intents_created = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(default=0)
    trace_id = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tick batches"
        constraints = [
            models.UniqueConstraint(fields=["instrument_symbol", "timeframe", "as_of"], name="tickbatch_unique")
        ]
        indexes = [
            models.Index(fields=["-as_of"], name="tickbatch_latest_idx"),
            # The dashboard's last tick per timeframe: without it a timeframe that never ticked scans every batch.
            models.Index(fields=["timeframe", "-as_of"], name="tickbatch_timeframe_latest_idx"),
            models.Index(fields=["trace_id"], name="tickbatch_trace_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_symbol} {self.timeframe} @ {self.as_of:%Y-%m-%d %H:%M}"


# --- Trading: intents, orders, fills, positions, trading state, incidents (tenant-owned, RLS) -----------------
# Orders and fills are written by the OMS only (execution/orders/oms.py); a trigger refuses anything else.


class TradingStateChoices(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    REDUCE_ONLY = "REDUCE_ONLY", "Reduce only"
    HALTED = "HALTED", "Halted"


class TradingControl(TenantOwnedModel):
    """The trading state of a bot (``bot`` set) or of its whole tenant (``bot`` empty), and the tenant's own risk
    limits (bot limits live on ``Bot.risk_limits``). No row means ACTIVE with no tenant limits."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    state = models.CharField(max_length=12, choices=TradingStateChoices.choices, default=TradingStateChoices.ACTIVE)
    risk_limits = models.JSONField(default=dict, blank=True, help_text="Tenant-wide limits (tenant row only).")
    set_by = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "bot"], name="tradingcontrol_one_per_scope", nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"{'bot ' + str(self.bot_id) if self.bot_id else 'tenant'} {self.state}"


class TradeIntent(TenantOwnedModel):
    """What a strategy or an operator wants traded, owned by the bot's tenant (RLS). Only the OMS turns it into
    orders."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        ACCEPTED = "ACCEPTED", "Accepted"
        REJECTED = "REJECTED", "Rejected"
        WORKING = "WORKING", "Working"
        PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
        FILLED = "FILLED", "Filled"
        CANCELLED = "CANCELLED", "Cancelled"
        FAILED = "FAILED", "Failed"

    TERMINAL_STATUSES = (Status.REJECTED, Status.FILLED, Status.CANCELLED, Status.FAILED)
    OPEN_STATUSES = (Status.PENDING, Status.ACCEPTED, Status.WORKING, Status.PARTIALLY_FILLED)

    class Source(models.TextChoices):
        TICK = "tick", "Tick"
        API = "api", "API"
        REPLAY = "replay", "Replay"
        RECONCILE = "reconcile", "Reconcile resolution (flatten)"

    class FailurePolicy(models.TextChoices):
        CANCEL_REMAINING = "CANCEL_REMAINING", "Cancel the other legs' open orders, keep what filled"
        FLATTEN = "FLATTEN", "Cancel the other legs' open orders and flatten what filled"

    # No index of the intents leads with the tenant but the pending one (partial): row-level security adds
    # ``tenant_id = <the tenant>`` to every statement, and while a table's statistics lag its tenants' growth
    # (never analyzed: the CI server and the bench run with autovacuum off) the planner guessed that condition
    # selective and read a tenant's every intent through a tenant-leading index for each batch the OMS or the fill
    # booking updated (a hash join, or a BitmapAnd with the keys): 53 ms for 50 intents of a 10,000-intent tenant.
    # Led by the key or the bot, the same indexes serve the same lookups, and the batch updates go by primary key.
    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    # Indexed by tradeintent_bot_recent_idx (bot, created_at), which serves a lookup by bot alone as well.
    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="intents", db_index=False)
    idempotency_key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=16, choices=Source.choices)
    bar_ts = models.DateTimeField(null=True, blank=True, help_text="The bar the decision was made on (tick, replay).")
    failure_policy = models.CharField(
        max_length=16, choices=FailurePolicy.choices, default=FailurePolicy.CANCEL_REMAINING
    )
    rejection = models.JSONField(null=True, blank=True, help_text="Which limit refused it, with the values.")
    risk_checks = models.JSONField(default=list, blank=True)
    status_detail = models.JSONField(null=True, blank=True, help_text="Why the status is what it is (leg failures).")
    created_by = models.CharField(max_length=150)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key", "tenant"], name="tradeintent_unique_key_per_tenant")
        ]
        indexes = [
            models.Index(fields=["bot", "-created_at"], name="tradeintent_bot_recent_idx"),
            models.Index(fields=["trace_id"], name="tradeintent_trace_idx"),  # the trace explorer
            # The OMS's claim (PENDING, oldest first, SKIP LOCKED): an ordered scan of the pending intents alone. On
            # the status index it read every entry ever written for 'PENDING' (each intent's first version) until a
            # vacuum, about 8 ms a batch after 30,000 intents; a plain index scan also drops the dead entries it meets.
            models.Index(fields=["tenant", "id"], name="tradeintent_pending_idx", condition=models.Q(status="PENDING")),
            # By status: a plain index (``db_index=True`` on a CharField adds a second, ``varchar_pattern_ops``
            # one for LIKE, which nothing asks and which the planner took for equality under stale statistics).
            models.Index(fields=["status"], name="tradeintent_status_idx"),
        ]

    def __str__(self) -> str:
        return f"intent {self.pk} bot={self.bot_id} {self.status}"

    @property
    def is_multi_leg(self) -> bool:
        return self.legs.count() > 1


class MultiLegIntentManager(models.Manager):
    def get_queryset(self):
        from controlplane import tenancy

        tenant_id = tenancy.current_tenant_id()
        queryset = super().get_queryset().annotate(leg_count=models.Count("legs")).filter(leg_count__gt=1)
        return queryset.filter(tenant_id=tenant_id) if tenant_id is not None else queryset.none()


class MultiLegIntent(TradeIntent):
    """Intents of more than one leg: the same rows, seen through the legs they hold."""

    objects = MultiLegIntentManager()

    class Meta:
        proxy = True
        verbose_name = "multi-leg intent"


class IntentLeg(TenantOwnedModel):
    """One leg of an intent (venue, instrument, side, quantity, order type), in the intent's tenant."""

    intent = models.ForeignKey(TradeIntent, on_delete=models.CASCADE, related_name="legs")
    leg_index = models.PositiveSmallIntegerField()
    venue = models.CharField(max_length=64)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=4, choices=(("buy", "Buy"), ("sell", "Sell")))
    quantity = models.DecimalField(max_digits=24, decimal_places=9)
    order_type = models.CharField(max_length=8, choices=(("market", "Market"), ("limit", "Limit"), ("stop", "Stop")))
    limit_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)

    class Meta:
        ordering = ["intent", "leg_index"]
        constraints = [
            models.UniqueConstraint(fields=["intent", "leg_index"], name="intentleg_unique_index"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="intentleg_quantity_positive"),
        ]


class Order(TenantOwnedModel):
    """One order at a venue, owned by the bot's tenant (RLS). Written by the OMS only (database trigger)."""

    class Status(models.TextChoices):
        SUBMITTING = "SUBMITTING", "Submitting"  # recorded before the venue call: a crash leaves it to look up
        WORKING = "WORKING", "Working"
        PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
        FILLED = "FILLED", "Filled"
        CANCELLED = "CANCELLED", "Cancelled"
        REJECTED = "REJECTED", "Rejected by the venue"
        FAILED = "FAILED", "Failed"

    OPEN_STATUSES = (Status.SUBMITTING, Status.WORKING, Status.PARTIALLY_FILLED)

    class Purpose(models.TextChoices):
        LEG = "LEG", "An intent leg"
        FLATTEN = "FLATTEN", "Flattens a leg after another leg failed"

    # No index of the tenant alone (see TradeIntent.tenant): here it made the booking's lookup of its intents' legs
    # read every order of the tenant for each intent (BitmapAnd with the intent index) under stale statistics, and
    # the batch updates of orders (``update_rows``) read them all through it.
    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    intent = models.ForeignKey(TradeIntent, on_delete=models.PROTECT, related_name="orders")
    leg = models.ForeignKey(IntentLeg, on_delete=models.PROTECT, related_name="orders")
    purpose = models.CharField(max_length=8, choices=Purpose.choices, default=Purpose.LEG)
    # Indexed by order_bot_recent_idx (bot, created_at), which serves a lookup by bot alone as well.
    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="orders", db_index=False)
    venue = models.CharField(max_length=64)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    client_order_id = models.CharField(max_length=64, unique=True)
    venue_order_id = models.CharField(max_length=128, blank=True)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(max_digits=24, decimal_places=9)
    order_type = models.CharField(max_length=8)
    limit_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    reference_price = models.DecimalField(
        max_digits=24,
        decimal_places=9,
        null=True,
        blank=True,
        help_text="The price the risk check used (latest close for market orders).",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTING)
    filled_quantity = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    average_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    fees = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    slippage = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    not_before = models.DateTimeField(help_text="Sim fills only on bars after this (the decision bar, or arrival).")
    last_matched_bar_ts = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    bot_stage = models.CharField(max_length=16, help_text="The bot's stage when the order was sent.")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["venue", "instrument", "status"], name="order_working_idx"),
            models.Index(fields=["status"], name="order_status_idx"),  # plain: see TradeIntent's status index
            models.Index(fields=["trace_id"], name="order_trace_idx"),  # the trace explorer
            # The risk checks' recent orders and cancels of a batch's bots (execution.risk.state): a range of each
            # bot's orders, not every order of the tenant filtered by time.
            models.Index(fields=["bot", "created_at"], name="order_bot_recent_idx"),
            models.Index(
                fields=["bot", "cancelled_at"], condition=Q(cancelled_at__isnull=False), name="order_bot_cancels_idx"
            ),
            # The tick asks, per tenant and instrument, whether any order is open for the sim venue to fill.
            models.Index(
                fields=["tenant", "instrument"],
                condition=Q(status__in=["WORKING", "PARTIALLY_FILLED"]),
                name="order_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.client_order_id} {self.side} {self.quantity} {self.status}"

    @property
    def remaining(self):
        return self.quantity - self.filled_quantity


class Fill(TenantOwnedModel):
    """One execution of an order, owned by the order's tenant (RLS). Written by the OMS only (database trigger)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="fills")
    venue = models.CharField(max_length=64)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    venue_fill_id = models.CharField(max_length=128)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(max_digits=24, decimal_places=9)
    price = models.DecimalField(max_digits=24, decimal_places=9)
    reference_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    fee = models.DecimalField(
        max_digits=24,
        decimal_places=9,
        null=True,
        blank=True,
        help_text="The venue's fee for this fill; null when the venue did not report it "
        "(unknown, not zero). Sim fills carry the fill model's fee.",
    )
    slippage = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    realized_pnl = models.DecimalField(
        max_digits=24,
        decimal_places=9,
        default=0,
        help_text="PnL this fill realized, after its fee (when the fee is known).",
    )
    bot_stage = models.CharField(max_length=16)
    ts = models.DateTimeField(help_text="When it executed (the bar's open or close time for sim fills).")
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["order", "venue_fill_id"], name="fill_unique_per_order")]
        indexes = [
            models.Index(fields=["tenant", "bot", "ts"], name="fill_bot_ts_idx"),
            models.Index(fields=["trace_id"], name="fill_trace_idx"),  # the trace explorer
        ]


class StrategyPosition(TenantOwnedModel):
    """A bot's position in one instrument and one book, kept by the OMS from the fills of that book
    (execution.risk.pnl.PositionState): its paper position (sim venue) and its live one (its venue) are two rows."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    book = models.CharField(
        max_length=8, choices=Book.choices, help_text="paper: fills at the sim venue; live: fills at the bot's venue."
    )
    quantity = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    average_price = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    realized_pnl = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    fees = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bot", "instrument", "book"], name="position_one_per_bot_instrument_book")
        ]


class VenueInventory(TenantOwnedModel):
    """What the tenant holds at a venue per asset (the instrument's symbol), summed over its bots' fills. The book
    follows from the venue (controlplane.books.book_for_venue); it is stored so a reader filters on it."""

    book = models.CharField(max_length=8, choices=Book.choices)
    venue = models.CharField(max_length=64)
    asset = models.CharField(max_length=64)
    quantity = models.DecimalField(max_digits=24, decimal_places=9, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "venue inventories"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "book", "venue", "asset"], name="inventory_one_per_asset")
        ]


class RiskIncident(TenantOwnedModel):
    """A risk event an operator must look at: a refusal that matters, or a circuit breaker trip."""

    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        RESOLVED = "RESOLVED", "Resolved"

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=64, help_text="The limit that refused, or circuit_breaker.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    intent = models.ForeignKey(TradeIntent, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolution_note = models.TextField(blank=True, help_text="What the operator found and did.")
    trace_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "status", "-opened_at"], name="riskincident_status_idx")]

    def __str__(self) -> str:
        return f"incident {self.pk} {self.kind} {self.status}"


class EquityWatermark(TenantOwnedModel):
    """A bot's equity (realized + unrealized PnL) in one book at its last mark and its high-water mark: what the
    drawdown circuit breaker (execution.risk.breakers) compares with the bot's ``max_drawdown``. The live book's peak
    starts at the first live mark: a paper peak is never a live one.

    ``tripped_at`` is set when the breaker kills the bot; the first mark after an unkill starts a new peak at the
    equity of that moment (the operator who unkilled accepted the loss so far).
    """

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="+")
    book = models.CharField(max_length=8, choices=Book.choices)
    peak_equity = models.DecimalField(max_digits=24, decimal_places=9)
    peak_at = models.DateTimeField()
    equity = models.DecimalField(max_digits=24, decimal_places=9)
    marked_at = models.DateTimeField()
    marks = models.JSONField(default=dict, blank=True, help_text="Per instrument: the mark price and its bar.")
    tripped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bot", "book"], name="equitywatermark_one_per_bot_book")]

    def __str__(self) -> str:
        return f"bot {self.bot_id} {self.book} equity {self.equity} peak {self.peak_equity}"

    @property
    def drawdown(self):
        return self.peak_equity - self.equity


# The market state of arbitrage (issue 18) lives in its own module; imported here so Django finds its models.
from execution.marketdata.models import BasisQuote, FundingRate, QuoteMinute, SpotQuote  # noqa: E402, F401
from execution.arb_models import ArbPnl, ArbSpread  # noqa: E402, F401
from execution.funding_models import BasisPnl, FundingPayment, FundingPosition  # noqa: E402, F401
