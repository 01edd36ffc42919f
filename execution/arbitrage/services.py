"""State changes of the arbitrage scanners that are not the scan itself."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import transaction

from bots.models import Bot, Stage

from controlplane.books import Book
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from execution.models import Instrument, VenueInventory
from execution.orders.quote_fills import quote_sim_venues
from execution.orders.routing import adapter_for
from integrations.venue_symbols import CCXT_MARKET_TYPES
from integrations.venues.base import VenueError

logger = logging.getLogger(__name__)


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


def live_cash_sync(*, venue: str, actor=None, actor_name: str | None = None) -> dict[str, Decimal]:
    """Set the current tenant's live ``VenueInventory`` rows of the quote currencies at the spot ``venue`` (USD at
    Kraken...) to the venue account's totals now (``fetch_balance`` through the venue's one client and the
    tenant's credentials), so a LIVE spot scanner sizes its buy legs by the cash the venue holds. A quote currency
    the account does not list is 0: the venue answered.

    Only cash. The base rows (the instrument's symbol) stay what the OMS booked from our fills: the live reconcile
    attributes a shared account's balance across the tenant's bots through them (execution.orders.live_positions),
    so writing the venue's total there would hide a difference; and our books keep no cash ledger, so live fills
    do not move these rows between syncs (the venue refuses a buy it cannot pay: the leg's failure policy applies).
    Fails closed: an unreachable venue or a refused key raises its code and changes nothing. Audited with every
    row's before and after; returns the synced holdings by currency."""
    if CCXT_MARKET_TYPES.get(venue) != "spot":
        spot = sorted(v for v, kind in CCXT_MARKET_TYPES.items() if kind == "spot")
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR, details={"venue": [f"Must be a live spot venue: one of {', '.join(spot)}."]}
        )
    currencies = sorted(
        {
            market["quote"]
            for market in (i.venue_symbols[venue] for i in Instrument.objects.filter(venue_symbols__has_key=venue))
            if isinstance(market, dict) and market.get("type", "spot") == "spot" and market.get("quote")
        }
    )
    if not currencies:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR, details={"venue": [f"No instrument is mapped to a spot market at {venue}."]}
        )
    try:
        held = adapter_for(venue).positions()
    except VenueError as error:
        raise ControlPlaneError(error.code, f"{venue}: {error}") from error
    synced = {currency: held.get(currency, Decimal(0)) for currency in currencies}
    with transaction.atomic():
        rows = {
            row.asset: row
            for row in VenueInventory.objects.select_for_update().filter(
                book=Book.LIVE, venue=venue, asset__in=currencies
            )
        }
        before = {currency: str(row.quantity) for currency, row in rows.items()}
        for currency, quantity in synced.items():
            row = rows.get(currency)
            if row is None:
                VenueInventory.objects.create(book=Book.LIVE, venue=venue, asset=currency, quantity=quantity)
            elif row.quantity != quantity:
                row.quantity = quantity
                row.save(update_fields=["quantity", "updated_at"])
        audit_record(
            action="inventory.live_cash_sync",
            resource_type="venue_inventory",
            resource_id=venue,
            actor=actor,
            actor_name=actor_name if actor is None else None,
            before=before,
            after={"venue": venue, "holdings": {currency: str(q) for currency, q in synced.items()}},
        )
    return synced


def sync_live_scanner_cash(*, actor_name: str) -> dict[str, str]:
    """``live_cash_sync`` of every spot venue a running LIVE spot scanner of the current tenant trades at (beat,
    every ``ARB_LIVE_CASH_SYNC_SECONDS``). One venue's failure is logged with its code and the others still sync;
    its cash rows keep their last synced value, whose ``updated_at`` says how old it is. Returns venue -> "synced"
    or the error code."""
    from bots.models import Runner
    from bots.strategies import get_strategy, quote_strategy_names

    bots = Bot.objects.filter(
        stage=Stage.LIVE,
        strategy__in=quote_strategy_names(),
        runners__status=Runner.Status.RUNNING,
        runners__mode=Runner.Mode.LIVE,
    ).distinct()
    symbols = {s for bot in bots if get_strategy(bot.strategy).market_kind == "spot" for s in bot.instruments}
    venues = sorted(
        {
            venue
            for instrument in Instrument.objects.filter(symbol__in=symbols)
            for venue in instrument.venue_symbols or {}
            if CCXT_MARKET_TYPES.get(venue) == "spot"
        }
    )
    outcome = {}
    for venue in venues:
        try:
            live_cash_sync(venue=venue, actor_name=actor_name)
            outcome[venue] = "synced"
        except ControlPlaneError as error:
            logger.warning("live cash sync failed", extra={"venue": venue, "error_code": str(error.code)})
            outcome[venue] = str(error.code)
    return outcome
