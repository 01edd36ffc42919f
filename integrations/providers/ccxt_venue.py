"""Coinbase, Kraken, Binance.US and Hyperliquid behind the OMS: one adapter over ccxt's unified API, with the
per-venue differences (client id form, sandbox, permissions, holdings) kept in the venue's client.

Our instrument symbol (``BTC-USD``) is never sent: each order goes to the instrument's market at the venue, which
the OMS passes in the request (``venue_market``: the venue's entry of ``Instrument.venue_symbols``, ``BTC/USD``;
Hyperliquid's ``BTC/USDC:USDC``), and a request without one is refused ``INSTRUMENT_NOT_MAPPED`` before anything is
written or sent (see ``integrations.venue_symbols``). Our client order id travels as the venue's client order id (a
UUID derived from it; Hyperliquid's 128-bit hex ``cloid``), so a lost answer is found again among the symbol's open
and closed orders. The send ledger keeps the venue symbol of every order sent (ccxt's order lookups need one).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from controlplane.errors import ControlPlaneError, ErrorCode
from integrations.clients import client_for
from integrations.providers.base import IntegrationError
from integrations.providers.ccxt_client import CcxtVenueClient
from integrations.venue_symbols import CCXT_MARKET_TYPES, venue_symbol_of
from integrations.venues.base import VenueError, VenueFill, VenueOrderAck, VenueOrderRequest, VenueOrderStatus
from integrations.venues.errors import venue_error
from integrations.venues.ledger import SendLedger

CCXT_VENUES = tuple(CCXT_MARKET_TYPES)

_STATUS = {
    "open": VenueOrderStatus.WORKING,
    "closed": VenueOrderStatus.FILLED,
    "canceled": VenueOrderStatus.CANCELLED,
    "cancelled": VenueOrderStatus.CANCELLED,
    "expired": VenueOrderStatus.CANCELLED,
    "rejected": VenueOrderStatus.REJECTED,
}


class CcxtVenue:
    def __init__(self, venue: str, *, bot_id: int | None = None, client: CcxtVenueClient | None = None) -> None:
        if venue not in CCXT_VENUES:
            raise ValueError(f"{venue} is not a ccxt venue")
        self.name = venue
        self.client: CcxtVenueClient = client or client_for(venue, bot_id=bot_id)
        self.ledger = SendLedger(venue)

    def place_order(self, request: VenueOrderRequest) -> VenueOrderAck:
        if (
            request.order_type not in ("market", "limit")
            or request.side not in ("buy", "sell")
            or request.quantity <= 0
            or (request.order_type == "limit" and request.limit_price is None)
        ):
            raise VenueError(
                ErrorCode.ORDER_REJECTED,
                f"Not sent to {self.name}: market or limit orders with a "
                "positive quantity (and a limit price for limits) only.",
            )
        if request.order_type == "market" and self.client.market_order_needs_price and request.reference_price is None:
            raise VenueError(
                ErrorCode.ORDER_REJECTED,
                f"Not sent to {self.name}: a market order there needs the "
                "price risk checked it at, and this one has none.",
            )
        request = replace(request, symbol=self.venue_symbol(request))
        self.ledger.record(request)
        try:
            order = self.client.create_order(
                symbol=request.symbol,
                order_type=request.order_type,
                side=request.side,
                amount=request.quantity,
                price=request.limit_price,
                client_order_id=request.client_order_id,
                reference_price=request.reference_price,
            )
        except IntegrationError as exc:
            raise venue_error(exc, sending=True) from exc
        if not isinstance(order, dict) or not order.get("id"):
            raise VenueError(
                ErrorCode.INTEGRATION_BAD_RESPONSE, f"{self.name} answered without an order id.", uncertain=True
            )
        self.ledger.bind(request.client_order_id, str(order["id"]))
        return _ack(order, request.client_order_id)

    def venue_symbol(self, request: VenueOrderRequest) -> str:
        """The venue's market for the request's instrument; refused (nothing sent) when it has none here."""
        try:
            return venue_symbol_of(request.symbol, self.name, request.venue_market).symbol
        except ControlPlaneError as error:
            raise VenueError(error.code, f"{error.message} Fix: {error.suggested_fix}") from error

    def lookup_order(self, *, client_order_id: str, venue_order_id: str | None = None) -> VenueOrderAck | None:
        sent = self.ledger.get(client_order_id)
        if sent is None:
            return None  # written before every send: without it, nothing was sent
        try:
            if venue_order_id:
                order = self.client.fetch_order(venue_order_id=venue_order_id, symbol=sent["symbol"])
            else:
                order = self.client.find_order(client_order_id=client_order_id, symbol=sent["symbol"])
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        return _ack(order, client_order_id) if order else None

    def cancel_order(self, *, client_order_id: str, venue_order_id: str | None) -> VenueOrderAck:
        ack = self.lookup_order(client_order_id=client_order_id, venue_order_id=venue_order_id)
        if ack is None:
            raise VenueError(ErrorCode.NOT_FOUND, f"{self.name} has no order for {client_order_id}.")
        if ack.status in (VenueOrderStatus.FILLED, VenueOrderStatus.CANCELLED, VenueOrderStatus.REJECTED):
            return ack
        try:
            self.client.cancel_order(
                venue_order_id=ack.venue_order_id, symbol=self.ledger.get(client_order_id)["symbol"]
            )
        except IntegrationError as exc:
            raise venue_error(exc, sending=True) from exc
        return self.lookup_order(client_order_id=client_order_id, venue_order_id=ack.venue_order_id) or ack

    def fills_since(self, since: datetime) -> list[VenueFill]:
        since_ms = int(since.timestamp() * 1000)
        fills = []
        try:
            for symbol in self.ledger.symbols():
                for trade in self.client.my_trades(symbol=symbol, since_ms=since_ms):
                    order_id = str(trade.get("order") or "")
                    fee = _quote_fee(trade, symbol)
                    fills.append(
                        VenueFill(
                            venue_fill_id=str(trade["id"]),
                            venue_order_id=order_id,
                            client_order_id=self.ledger.client_order_id_for(order_id),
                            quantity=Decimal(str(trade["amount"])),
                            price=Decimal(str(trade["price"])),
                            fee=fee,
                            ts=datetime.fromtimestamp(trade["timestamp"] / 1000, tz=UTC),
                        )
                    )
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        return fills

    def positions(self) -> dict[str, Decimal]:
        """Spot venues: holdings per currency; Hyperliquid: signed perpetual positions per ccxt symbol (the
        reconcile source of execution translates both into our instruments)."""
        try:
            return self.client.holdings()
        except IntegrationError as exc:
            raise venue_error(exc) from exc


def _quote_fee(trade: dict, symbol: str) -> Decimal | None:
    """The fill's fee in the market's quote currency, the currency our PnL is in. A fee the venue did not report,
    or charged in another coin (Binance.US in BNB), is unknown: never zero, never another coin's amount."""
    fee = trade.get("fee") or {}
    cost, currency = fee.get("cost"), fee.get("currency")
    quote = symbol.split("/")[-1].split(":")[0]
    if cost is None or (currency is not None and currency != quote):
        return None
    return Decimal(str(cost))


def _ack(order: dict, client_order_id: str) -> VenueOrderAck:
    filled = Decimal(str(order.get("filled") or 0))
    status = _STATUS.get(order.get("status"), VenueOrderStatus.WORKING)
    if status == VenueOrderStatus.WORKING and filled > 0:
        status = VenueOrderStatus.PARTIALLY_FILLED
    average = order.get("average")
    return VenueOrderAck(
        venue_order_id=str(order["id"]),
        client_order_id=client_order_id,
        status=status,
        filled_quantity=filled,
        average_price=Decimal(str(average)) if average else None,
        reason=str(order.get("status")) if status == VenueOrderStatus.REJECTED else "",
        raw={k: v for k, v in order.items() if k != "info"},
    )
