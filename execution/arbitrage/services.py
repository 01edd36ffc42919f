"""State changes of the arbitrage scanners that are not the scan itself."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction

from controlplane.books import Book
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from execution.models import VenueInventory
from execution.orders.quote_fills import quote_sim_venues


def paper_inventory_fund(*, venue: str, asset: str, quantity, actor=None, actor_name: str | None = None) -> Decimal:
    """Put ``quantity`` of ``asset`` (a quote currency such as USD, or an instrument's symbol for its base) into
    the current tenant's paper book at the sim twin ``venue`` (``sim-kraken``), so a PAPER scanner has something
    to sell and to buy with. Paper only: a live venue's holdings are what the venue reports, never typed in.
    Audited; returns the new holding."""
    errors: dict[str, list[str]] = {}
    if venue not in quote_sim_venues():
        errors["venue"] = [f"Must be a quote-filled sim venue: one of {', '.join(sorted(quote_sim_venues()))}."]
    asset = (asset or "").strip()
    if not asset or len(asset) > 64:
        errors["asset"] = ["Required, at most 64 characters."]
    try:
        amount = Decimal(str(quantity))
        if not amount.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        errors["quantity"] = ["Must be a decimal number."]
        amount = None
    if errors:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details=errors)
    with transaction.atomic():
        row, _ = VenueInventory.objects.select_for_update().get_or_create(book=Book.PAPER, venue=venue, asset=asset)
        before = row.quantity
        if before + amount < 0:
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR,
                details={
                    "quantity": [f"Would leave {before + amount} {asset} at {venue}: a holding cannot go negative."]
                },
            )
        row.quantity = before + amount
        row.save(update_fields=["quantity", "updated_at"])
        audit_record(
            action="inventory.paper_fund",
            resource_type="venue_inventory",
            resource_id=row.pk,
            actor=actor,
            actor_name=actor_name if actor is None else None,
            before={"quantity": str(before)},
            after={"venue": venue, "asset": asset, "quantity": str(row.quantity)},
        )
    return row.quantity
