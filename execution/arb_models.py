"""What the arbitrage scanners found and what their intents made (issue 18): ``arb_spreads`` and ``arb_pnl``.

Tenant-owned (RLS), written only by ``execution.arbitrage``. Imported by ``execution/models.py`` so Django finds
them; they live outside the ``execution.arbitrage`` package because every execution layer imports the app's
model module, and the scanner package sits above them all. They name other models by string only.
"""

from __future__ import annotations

from django.db import models

from controlplane.books import Book
from controlplane.models import TenantOwnedModel

_PRICE = {"max_digits": 24, "decimal_places": 10}
_AMOUNT = {"max_digits": 28, "decimal_places": 10}
_BPS = {"max_digits": 14, "decimal_places": 4}


class ArbSpread(TenantOwnedModel):
    """One priced (buy venue, sell venue, instrument) candidate of one scan of a spot scanner bot: the sell bid was
    above the buy ask at the scan's quotes, and its net edge was positive, or it was the scan's best pair. Other
    pairs are counted in the scan's trace, not stored (they are most pairs, every scan). Fees are each leg's taker fee on its notional at the priced size, from the venue's fee
    schedule (``fee_sources`` says which: the ``ARB_TAKER_FEES`` setting or ccxt's published schedule)."""

    class Context(models.TextChoices):
        TICK = "tick", "Live or paper scan"
        REPLAY = "replay", "Replay over recorded quotes"

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="+", db_index=False)
    scanned_at = models.DateTimeField(help_text="The scan's as_of: the quotes it read were received at or before it.")
    context = models.CharField(max_length=8, choices=Context.choices, default=Context.TICK)
    run_ref = models.BigIntegerField(null=True, blank=True, help_text="Replay run id.")
    instrument = models.CharField(max_length=32)
    buy_venue = models.CharField(max_length=16)
    sell_venue = models.CharField(max_length=16)
    buy_price = models.DecimalField(**_PRICE, help_text="The buy venue's ask.")
    sell_price = models.DecimalField(**_PRICE, help_text="The sell venue's bid.")
    gross_spread = models.DecimalField(**_PRICE, help_text="Sell bid - buy ask, per unit.")
    gross_spread_bps = models.DecimalField(**_BPS)
    buy_fee = models.DecimalField(**_AMOUNT, null=True, blank=True, help_text="Null: the venue's fee is unknown.")
    sell_fee = models.DecimalField(**_AMOUNT, null=True, blank=True, help_text="Null: the venue's fee is unknown.")
    fee_sources = models.JSONField(default=dict, blank=True)
    expected_slippage = models.DecimalField(**_AMOUNT, null=True, blank=True)
    net_edge = models.DecimalField(**_AMOUNT, null=True, blank=True, help_text="At the priced size, in quote currency.")
    net_edge_bps = models.DecimalField(**_BPS, null=True, blank=True)
    priced_size = models.DecimalField(
        **_AMOUNT, null=True, blank=True, help_text="The size the edge is priced at: executable, else quoted."
    )
    quoted_size = models.DecimalField(**_AMOUNT, help_text="Least of both quoted sizes and the bot's max quantity.")
    executable_size = models.DecimalField(**_AMOUNT, null=True, blank=True, help_text="Also within inventory.")
    acted = models.BooleanField(default=False)
    why_not = models.CharField(max_length=200, blank=True)
    intent = models.ForeignKey(
        "execution.TradeIntent", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "arb_spreads"
        ordering = ["-scanned_at", "instrument", "buy_venue", "sell_venue"]
        constraints = [
            # A re-run of the same scan writes nothing new (ON CONFLICT DO NOTHING).
            models.UniqueConstraint(
                fields=["tenant", "bot", "scanned_at", "context", "run_ref", "instrument", "buy_venue", "sell_venue"],
                name="arbspread_one_per_scan_pair",
                nulls_distinct=False,
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "bot", "-scanned_at"], name="arbspread_bot_recent_idx"),
            models.Index(fields=["intent"], condition=models.Q(intent__isnull=False), name="arbspread_intent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} {self.buy_venue}>{self.sell_venue} {self.net_edge_bps} bps @ {self.scanned_at}"


class ArbPnl(TenantOwnedModel):
    """The outcome of one spot arbitrage intent once it is terminal: both legs' fills, fees, and the realized edge
    against the expected edge of the ``arb_spreads`` row that emitted it. Written by
    ``execution.arbitrage.pnl.arb_pnl_settle`` at the bot's next scan after the intent ends (and by a replay at
    its end); recomputed from the fills, so settling twice gives the same row.

    ``realized_edge`` is over the matched quantity (the smaller of the two legs' fills): sell proceeds - buy cost
    - both legs' fees (and the fees of any flatten orders). A leg left unmatched (``unmatched_quantity``) is a
    position, not an edge: it is reported, never counted as profit. ``fees`` is null when a venue did not report a
    fill's fee: unknown, not zero, and then ``realized_edge`` is null too."""

    intent = models.OneToOneField("execution.TradeIntent", on_delete=models.PROTECT, related_name="+")
    spread = models.ForeignKey(ArbSpread, on_delete=models.PROTECT, related_name="+")
    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="+", db_index=False)
    book = models.CharField(max_length=8, choices=Book.choices)
    instrument = models.CharField(max_length=32)
    buy_venue = models.CharField(max_length=16)
    sell_venue = models.CharField(max_length=16)
    intent_status = models.CharField(max_length=16)
    bought_quantity = models.DecimalField(**_AMOUNT)
    buy_average_price = models.DecimalField(**_PRICE, null=True, blank=True)
    sold_quantity = models.DecimalField(**_AMOUNT)
    sell_average_price = models.DecimalField(**_PRICE, null=True, blank=True)
    matched_quantity = models.DecimalField(**_AMOUNT)
    unmatched_quantity = models.DecimalField(**_AMOUNT, help_text="Bought - sold (flatten orders included).")
    fees = models.DecimalField(**_AMOUNT, null=True, blank=True)
    realized_edge = models.DecimalField(**_AMOUNT, null=True, blank=True)
    realized_edge_bps = models.DecimalField(**_BPS, null=True, blank=True)
    expected_edge = models.DecimalField(**_AMOUNT, null=True, blank=True, help_text="The spread row's net edge.")
    expected_edge_bps = models.DecimalField(**_BPS, null=True, blank=True)
    edge_shortfall_bps = models.DecimalField(
        **_BPS, null=True, blank=True, help_text="Expected - realized, in bps: what execution cost beyond the plan."
    )
    fills = models.PositiveIntegerField()
    settled_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "arb_pnl"
        ordering = ["-intent_id"]
        verbose_name = verbose_name_plural = "arb PnL"
        indexes = [models.Index(fields=["tenant", "bot", "-intent"], name="arbpnl_bot_recent_idx")]

    def __str__(self) -> str:
        return f"intent {self.intent_id} {self.instrument} {self.buy_venue}>{self.sell_venue} {self.realized_edge}"
