"""Market state for arbitrage: the crypto venues' top of book, funding and basis (issue 18), platform data like
``Bar``: the same fact for every tenant, so global (no ``tenant_id``, no RLS), written only by the quote collector
(``manage.py collect_quotes``, execution.marketdata.quotes) and read through execution.marketdata.quote_selectors.

Volume decides the storage. ``SpotQuote`` and ``BasisQuote`` get a row per venue and market every poll (four
venues x fifty markets every two seconds is ~8.6 million rows a day), so they are partitioned by day of
``received_at`` (migration 0016) and whole days are dropped past ``ARB_QUOTE_RETENTION_HOURS``; before that, every
closed minute is folded into ``QuoteMinute`` (OHLC of mid and spread), which backtests read and which is kept
``ARB_QUOTE_HISTORY_DAYS``. ``FundingRate`` is one row per venue, market and funding time, updated while the
venue's estimate moves: a day is 24 rows per perpetual, kept as long as the minutes.

These classes are imported by ``execution/models.py`` (the app's model module) and live here because that file
is at its size limit; they reference ``Instrument`` by name so this module imports no app code.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class MarketType(models.TextChoices):
    SPOT = "spot", "Spot"
    SWAP = "swap", "Perpetual swap"


class SpotQuote(models.Model):
    """One venue's top of book for one instrument, as the collector received it. Hyperliquid's rows are its
    perpetual's book (``market_type`` swap): the spot scanner reads ``spot`` rows only.

    The database's primary key is ``(id, received_at)`` (a partitioned table's unique indexes must hold the
    partition key); ``id`` comes from one sequence, so Django's single-column key stays true. Nothing references
    this table by foreign key."""

    id = models.BigAutoField(primary_key=True)
    venue = models.CharField(max_length=16)
    # No database foreign key: a per-row constraint trigger on the hottest insert path buys nothing (the collector
    # writes only instruments it has just read), and it would stop a day's partition from being dropped while
    # its rows' checks are pending.
    instrument = models.ForeignKey(
        "execution.Instrument", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    market = models.CharField(max_length=48, help_text="The venue's market (ccxt's unified symbol).")
    market_type = models.CharField(max_length=8, choices=MarketType.choices)
    bid = models.DecimalField(max_digits=24, decimal_places=10)
    ask = models.DecimalField(max_digits=24, decimal_places=10)
    bid_size = models.DecimalField(max_digits=30, decimal_places=10)
    ask_size = models.DecimalField(max_digits=30, decimal_places=10)
    venue_ts = models.DateTimeField(null=True, blank=True, help_text="The venue's own time of the book, if it says.")
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Every read: the latest quote of (instrument, venue) as of a time, and a window of them.
            models.Index(fields=["instrument", "venue", "-received_at"], name="spotquote_latest_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(bid__gt=0, ask__gt=0, bid_size__gte=0, ask_size__gte=0), name="spotquote_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.venue} {self.market} {self.bid}/{self.ask} @ {self.received_at:%H:%M:%S.%f}"

    @property
    def mid(self):
        return (self.bid + self.ask) / 2


class FundingRate(models.Model):
    """A perpetual's funding rate for one funding time (``funding_at``): the venue's estimate, refreshed each poll
    until that time passes, then the rate that was paid."""

    venue = models.CharField(max_length=16)
    instrument = models.ForeignKey("execution.Instrument", on_delete=models.PROTECT, related_name="+", db_index=False)
    market = models.CharField(max_length=48)
    rate = models.DecimalField(max_digits=20, decimal_places=12, help_text="Per funding interval, as a fraction.")
    interval_hours = models.PositiveSmallIntegerField(null=True, blank=True)
    funding_at = models.DateTimeField(help_text="When this rate is paid (the venue's next funding time).")
    venue_ts = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "venue", "funding_at"], name="fundingrate_one_per_time")
        ]

    def __str__(self) -> str:
        return f"{self.venue} {self.market} {self.rate} at {self.funding_at:%Y-%m-%d %H:%M}"


class BasisQuote(models.Model):
    """A perpetual's mark and index against the spot venues' mid at the same poll: ``basis = mark - spot``,
    ``basis_bps`` relative to spot. ``spot_venues`` names the quotes the spot price is the median of. Partitioned
    like ``SpotQuote`` (same key, same retention)."""

    id = models.BigAutoField(primary_key=True)
    venue = models.CharField(max_length=16)
    instrument = models.ForeignKey(  # no database foreign key, as SpotQuote
        "execution.Instrument", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    market = models.CharField(max_length=48)
    mark = models.DecimalField(max_digits=24, decimal_places=10)
    index = models.DecimalField(max_digits=24, decimal_places=10)
    spot = models.DecimalField(max_digits=24, decimal_places=10)
    spot_venues = models.JSONField(default=list)
    basis = models.DecimalField(max_digits=24, decimal_places=10)
    basis_bps = models.DecimalField(max_digits=14, decimal_places=4)
    funding_rate = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True)
    next_funding_at = models.DateTimeField(null=True, blank=True)
    venue_ts = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["instrument", "venue", "-received_at"], name="basisquote_latest_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(mark__gt=0, index__gt=0, spot__gt=0), name="basisquote_positive")
        ]

    def __str__(self) -> str:
        return f"{self.venue} {self.market} basis {self.basis_bps} bps @ {self.received_at:%H:%M:%S}"


class QuoteMinute(models.Model):
    """One closed minute of a venue's quotes for one instrument: OHLC of the mid and of the spread (ask - bid),
    and how many quotes went into it. The history backtests read once the raw quotes are dropped."""

    venue = models.CharField(max_length=16)
    instrument = models.ForeignKey("execution.Instrument", on_delete=models.PROTECT, related_name="+", db_index=False)
    market_type = models.CharField(max_length=8, choices=MarketType.choices)
    minute = models.DateTimeField()
    mid_open = models.DecimalField(max_digits=24, decimal_places=10)
    mid_high = models.DecimalField(max_digits=24, decimal_places=10)
    mid_low = models.DecimalField(max_digits=24, decimal_places=10)
    mid_close = models.DecimalField(max_digits=24, decimal_places=10)
    spread_open = models.DecimalField(max_digits=24, decimal_places=10)
    spread_high = models.DecimalField(max_digits=24, decimal_places=10)
    spread_low = models.DecimalField(max_digits=24, decimal_places=10)
    spread_close = models.DecimalField(max_digits=24, decimal_places=10)
    samples = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "venue", "market_type", "minute"], name="quoteminute_one_per_minute"
            ),
            models.CheckConstraint(
                condition=Q(mid_low__gt=0, mid_high__gte=F("mid_low"), spread_high__gte=F("spread_low"), samples__gt=0),
                name="quoteminute_ohlc_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.venue} {self.instrument_id} {self.minute:%Y-%m-%d %H:%M} mid {self.mid_close}"
