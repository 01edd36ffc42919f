"""Funding/basis arbitrage positions and the funding they earn (issue 18).

A ``FundingPosition`` is one hedged pair a funding scanner bot opened: a spot leg at a spot venue and the opposite
perpetual leg at a perpetual venue, of the same size, so the price risk cancels and what is left is the funding
the perpetual pays (or charges) and the change of the basis (perpetual minus spot) between entry and exit. Its
status follows its two intents: OPENING while the entry intent is working, OPEN once both legs filled, CLOSING
while the exit intent is working, CLOSED once it filled (or when the entry never filled: ``close_reason`` says). A replay's positions carry its
runner (``run_ref``) and never meet the live timeline's.

A ``FundingPayment`` is one funding time while the position was open: the venue's rate for that time
(``FundingRate``) times the perpetual leg's notional at the mark of that time, signed by the perpetual's side
(a short receives a positive rate). One row per (position, funding time), so booking twice books nothing new.

``basis_pnl`` is a view over both (migration ``0018_funding_positions``): entry basis, funding received, exit basis,
fees and the total per position. A view, not a table, because every number in it is already stored once (the
position's entry and exit prices and fees from its fills, the payments): a second copy would be a second truth to
keep in step, and a view cannot drift. It is ``security_invoker``, so the tables' tenant policies apply to it.

Imported by ``execution/models.py`` so Django finds them; they reference other models by name.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from controlplane.books import Book
from controlplane.models import TenantOwnedModel


class FundingDirection(models.TextChoices):
    LONG_SPOT_SHORT_PERP = "long_spot_short_perp", "Long spot, short perpetual (earns positive funding)"
    SHORT_SPOT_LONG_PERP = "short_spot_long_perp", "Short spot, long perpetual (earns negative funding)"


class FundingPosition(TenantOwnedModel):
    """One funding/basis position of a scanner bot: its two legs, entry, exit and status."""

    class Status(models.TextChoices):
        OPENING = "OPENING", "Entry intent working"
        OPEN = "OPEN", "Both legs filled; earning funding"
        CLOSING = "CLOSING", "Exit intent working"
        CLOSED = "CLOSED", "Closed"

    ACTIVE_STATUSES = (Status.OPENING, Status.OPEN, Status.CLOSING)

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="funding_positions")
    book = models.CharField(max_length=8, choices=Book.choices)
    run_ref = models.BigIntegerField(
        null=True, blank=True, help_text="The replay runner whose scans opened it; null on the live timeline."
    )
    instrument = models.ForeignKey("execution.Instrument", on_delete=models.PROTECT, related_name="+")
    spot_venue = models.CharField(max_length=64)
    perp_venue = models.CharField(max_length=64, help_text="Where the funding is paid (the FundingRate venue).")
    direction = models.CharField(max_length=24, choices=FundingDirection.choices)
    quantity = models.DecimalField(max_digits=24, decimal_places=9, help_text="Base units of each leg.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPENING, db_index=True)
    open_intent = models.ForeignKey("execution.TradeIntent", on_delete=models.PROTECT, related_name="+")
    close_intent = models.ForeignKey(
        "execution.TradeIntent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What the scan expected when it opened (its quotes), kept beside what the fills gave.
    expected = models.JSONField(default=dict, blank=True, help_text="The scan's numbers when it opened.")
    entry_spot_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    entry_perp_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    entry_fees = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True, help_text="When the last entry leg filled.")
    exit_spot_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    exit_perp_price = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    exit_fees = models.DecimalField(max_digits=24, decimal_places=9, null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When the last exit leg filled.")
    close_reason = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One active position per bot, instrument and book: a rescan never stacks a second one.
            models.UniqueConstraint(
                fields=["bot", "instrument", "book", "run_ref"],
                condition=Q(status__in=["OPENING", "OPEN", "CLOSING"]),
                name="fundingposition_one_active",
                nulls_distinct=False,
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fundingposition_quantity_positive"),
        ]
        indexes = [models.Index(fields=["tenant", "bot", "-id"], name="fundingposition_bot_idx")]

    def __str__(self) -> str:
        return f"funding position {self.pk} bot={self.bot_id} {self.direction} {self.quantity} {self.status}"

    @property
    def perp_sign(self) -> int:
        """+1 when the perpetual leg is short (a positive rate is received), -1 when it is long."""
        return 1 if self.direction == FundingDirection.LONG_SPOT_SHORT_PERP else -1


class FundingPayment(TenantOwnedModel):
    """Funding booked for one funding time of an open position: ``amount = sign x rate x quantity x mark``
    (positive: received)."""

    position = models.ForeignKey(FundingPosition, on_delete=models.PROTECT, related_name="payments")
    funding_at = models.DateTimeField()
    rate = models.DecimalField(max_digits=20, decimal_places=12)
    mark = models.DecimalField(max_digits=24, decimal_places=10, help_text="The perpetual's mark at funding_at.")
    mark_at = models.DateTimeField(help_text="When that mark was received.")
    quantity = models.DecimalField(max_digits=24, decimal_places=9)
    amount = models.DecimalField(max_digits=24, decimal_places=9)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "funding_at"]
        constraints = [models.UniqueConstraint(fields=["position", "funding_at"], name="fundingpayment_one_per_time")]

    def __str__(self) -> str:
        return f"position {self.position_id} {self.funding_at:%Y-%m-%d %H:%M} {self.amount}"


class BasisPnl(TenantOwnedModel):
    """A row of the ``basis_pnl`` view (read only): one per funding position."""

    position = models.OneToOneField(
        FundingPosition, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", db_column="position_id"
    )
    bot = models.ForeignKey("bots.Bot", on_delete=models.DO_NOTHING, related_name="+")
    book = models.CharField(max_length=8)
    symbol = models.CharField(max_length=64)
    spot_venue = models.CharField(max_length=64)
    perp_venue = models.CharField(max_length=64)
    direction = models.CharField(max_length=24)
    status = models.CharField(max_length=8)
    quantity = models.DecimalField(max_digits=24, decimal_places=9)
    entry_basis = models.DecimalField(max_digits=24, decimal_places=9, null=True)
    exit_basis = models.DecimalField(max_digits=24, decimal_places=9, null=True)
    basis_pnl = models.DecimalField(max_digits=24, decimal_places=9, null=True)
    funding_received = models.DecimalField(max_digits=24, decimal_places=9)
    funding_payments = models.IntegerField()
    fees = models.DecimalField(max_digits=24, decimal_places=9, null=True)
    total = models.DecimalField(max_digits=24, decimal_places=9, null=True)
    opened_at = models.DateTimeField(null=True)
    closed_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "basis_pnl"
        ordering = ["-position_id"]
