"""Market reference data: instruments and their bars.

Global, not tenant-owned: a bar of ES is the same fact for every tenant, and the tick batches per (instrument,
timeframe) across all tenants' bots, so one read serves them all. Tenants never write here through the API; bars
come from providers and ``import_bars`` (operators), instruments from superusers. What is tenant-owned is what
bots do with them (intents, orders, traces), which carry ``tenant_id`` and RLS.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from execution.calendars import validate_calendar_name
from execution.timeframes import Timeframe


class Instrument(models.Model):
    class AssetClass(models.TextChoices):
        FUTURE = "future", "Future"
        CRYPTO = "crypto", "Crypto"
        EQUITY = "equity", "Equity"
        FX = "fx", "FX"

    symbol = models.CharField(
        max_length=32, unique=True,
        help_text="Our name for it: a futures root (ES) is the continuous front contract; crypto as BASE-QUOTE.")
    venue = models.CharField(max_length=32, help_text="Exchange or venue, e.g. CME, COINBASE.")
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices)
    tick_size = models.DecimalField(max_digits=20, decimal_places=10)
    multiplier = models.DecimalField(max_digits=20, decimal_places=6, help_text="Currency value of one point.")
    calendar = models.CharField(
        max_length=64, validators=[validate_calendar_name],
        help_text="pandas-market-calendars name (CME_Equity, 24/7, ...); execution.calendars.PRODUCT_CALENDARS.")
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
    """One OHLCV bar; ``ts`` is the bar's open time (UTC), on the timeframe's grid."""

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
            models.UniqueConstraint(fields=["instrument", "timeframe", "ts"], name="bar_unique_instrument_timeframe_ts"),
            models.CheckConstraint(
                condition=models.Q(low__gt=0, high__gte=models.F("low"), open__gte=models.F("low"),
                                   open__lte=models.F("high"), close__gte=models.F("low"),
                                   close__lte=models.F("high"), volume__gte=0),
                name="bar_ohlc_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.timeframe} {self.ts.isoformat()}"


class TickBatch(models.Model):
    """One (instrument, timeframe, as_of) tick batch: the observatory's record of what every tick did.

    Global, like the bars it reads: it holds counts only, no tenant's decisions (those are in the traces).
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
        constraints = [
            models.UniqueConstraint(fields=["instrument_symbol", "timeframe", "as_of"], name="tickbatch_unique"),
        ]
        indexes = [models.Index(fields=["-as_of"], name="tickbatch_latest_idx")]

    def __str__(self) -> str:
        return f"{self.instrument_symbol} {self.timeframe} @ {self.as_of:%Y-%m-%d %H:%M}"
