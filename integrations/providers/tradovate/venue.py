"""Tradovate behind the OMS. Our client order id travels as Tradovate's ``clOrdId``, so an order whose answer
was lost is found again through the command that carried it (``/command/list``), never sent twice.

A root (``ES``) is sent as its front contract (``ESZ6``, see ``integrations.providers.futures_contracts``);
positions come back under the root. Fees: Tradovate reports each fill's fees as a FillFee (``/fillFee/list``, id =
the fill's id: ``commission``, ``clearingFee``, ``exchangeFee``, ``nfaFee``, ``brokerageFee``, ``ipFee``,
``orderRoutingFee``); their sum is the fill's fee. A fill with no FillFee yet has fee ``None`` (unknown), never
zero.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from controlplane.errors import ErrorCode
from integrations.clients import client_for
from integrations.providers.base import IntegrationError
from integrations.providers.futures_contracts import root_of, tradovate_symbol
from integrations.providers.tradovate.client import ORDER_TYPES, TradovateClient
from integrations.venues.base import VenueError, VenueFill, VenueOrderAck, VenueOrderRequest, VenueOrderStatus
from integrations.venues.errors import venue_error

_STATUS = {
    "Filled": VenueOrderStatus.FILLED,
    "Completed": VenueOrderStatus.FILLED,
    "Canceled": VenueOrderStatus.CANCELLED,
    "Expired": VenueOrderStatus.CANCELLED,
    "Rejected": VenueOrderStatus.REJECTED,
}


class TradovateVenue:
    name = "tradovate"

    def __init__(self, *, bot_id: int | None = None, client: TradovateClient | None = None) -> None:
        self.client: TradovateClient = client or client_for("tradovate", bot_id=bot_id)
        self._account: dict | None = None
        self._contracts: dict[int, str] = {}

    def account(self) -> dict:
        if self._account is None:
            try:
                self._account = self.client.trading_account()
            except IntegrationError as exc:
                raise venue_error(exc) from exc
        return self._account

    def place_order(self, request: VenueOrderRequest) -> VenueOrderAck:
        _check(request)
        symbol = tradovate_symbol(request.symbol)
        account = self.account()
        try:
            order_id = self.client.place_order(
                account=account,
                symbol=symbol,
                side=request.side,
                quantity=request.quantity,
                order_type=request.order_type,
                client_order_id=request.client_order_id,
                limit_price=request.limit_price,
                stop_price=request.stop_price,
            )
        except IntegrationError as exc:
            raise venue_error(exc, sending=True) from exc
        return VenueOrderAck(
            venue_order_id=str(order_id), client_order_id=request.client_order_id, status=VenueOrderStatus.WORKING
        )

    def lookup_order(self, *, client_order_id: str, venue_order_id: str | None = None) -> VenueOrderAck | None:
        try:
            order_id = (
                int(venue_order_id) if venue_order_id else self.client.order_id_for_client_order_id(client_order_id)
            )
            if order_id is None:
                return None
            order = self.client.order(order_id)
            fills = self.client.fills(order_id=order_id)
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        filled = sum((Decimal(str(f["qty"])) for f in fills if f.get("active", True)), Decimal("0"))
        notional = sum(
            (Decimal(str(f["qty"])) * Decimal(str(f["price"])) for f in fills if f.get("active", True)), Decimal("0")
        )
        status = _STATUS.get(order.get("ordStatus"), VenueOrderStatus.WORKING)
        if status == VenueOrderStatus.WORKING and filled > 0:
            status = VenueOrderStatus.PARTIALLY_FILLED
        return VenueOrderAck(
            venue_order_id=str(order_id),
            client_order_id=client_order_id,
            status=status,
            filled_quantity=filled,
            average_price=(notional / filled) if filled else None,
            reason=order.get("ordStatus", "") if status == VenueOrderStatus.REJECTED else "",
            raw=order,
        )

    def cancel_order(self, *, client_order_id: str, venue_order_id: str | None) -> VenueOrderAck:
        ack = self.lookup_order(client_order_id=client_order_id, venue_order_id=venue_order_id)
        if ack is None:
            raise VenueError(ErrorCode.NOT_FOUND, f"Tradovate has no order with clOrdId {client_order_id}.")
        if ack.status in (VenueOrderStatus.FILLED, VenueOrderStatus.CANCELLED, VenueOrderStatus.REJECTED):
            return ack
        try:
            self.client.cancel_order(order_id=int(ack.venue_order_id))
        except IntegrationError as exc:
            raise venue_error(exc, sending=True) from exc
        return self.lookup_order(client_order_id=client_order_id, venue_order_id=ack.venue_order_id) or ack

    def fills_since(self, since: datetime) -> list[VenueFill]:
        try:
            fills = self.client.fills()
            commands = self.client.commands()
            fees = {row.get("id"): row for row in self.client.fill_fees() if isinstance(row, dict)}
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        ours = {
            c["orderId"]: c["clOrdId"]
            for c in commands
            if isinstance(c, dict) and c.get("commandType") == "New" and c.get("clOrdId")
        }
        result = []
        for fill in fills:
            ts = datetime.fromisoformat(str(fill["timestamp"]).replace("Z", "+00:00"))
            if ts < since or not fill.get("active", True):
                continue
            result.append(
                VenueFill(
                    venue_fill_id=str(fill["id"]),
                    venue_order_id=str(fill["orderId"]),
                    client_order_id=ours.get(fill["orderId"], ""),
                    quantity=Decimal(str(fill["qty"])),
                    price=Decimal(str(fill["price"])),
                    fee=fill_fee(fees.get(fill["id"])),
                    ts=ts,
                )
            )
        return result

    def positions(self) -> dict[str, Decimal]:
        account_id = self.account()["id"]
        try:
            rows = [p for p in self.client.positions() if p.get("accountId") == account_id and p.get("netPos")]
            result: dict[str, Decimal] = {}
            for row in rows:
                root = root_of(self._contract(row["contractId"]))
                result[root] = result.get(root, Decimal("0")) + Decimal(str(row["netPos"]))
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        return {symbol: quantity for symbol, quantity in result.items() if quantity}

    def _contract(self, contract_id: int) -> str:
        if contract_id not in self._contracts:
            self._contracts[contract_id] = self.client.contract_name(contract_id)
        return self._contracts[contract_id]


FEE_FIELDS = ("commission", "clearingFee", "exchangeFee", "nfaFee", "brokerageFee", "ipFee", "orderRoutingFee")


def fill_fee(row: dict | None) -> Decimal | None:
    """The fill's total fee from its FillFee, or None when Tradovate has not reported one."""
    if row is None:
        return None
    return sum((Decimal(str(row[name])) for name in FEE_FIELDS if row.get(name) is not None), Decimal("0"))


def _check(request: VenueOrderRequest) -> None:
    """Refuse what Tradovate cannot take before anything is sent."""
    problems = []
    if request.order_type not in ORDER_TYPES:
        problems.append(f"order type {request.order_type!r}")
    if request.side not in ("buy", "sell"):
        problems.append(f"side {request.side!r}")
    if request.quantity <= 0 or request.quantity != request.quantity.to_integral_value():
        problems.append(f"quantity {request.quantity} (whole contracts only)")
    if request.order_type == "limit" and request.limit_price is None:
        problems.append("a limit order without limit_price")
    if request.order_type == "stop" and request.stop_price is None:
        problems.append("a stop order without stop_price")
    if problems:
        raise VenueError(ErrorCode.ORDER_REJECTED, "Not sent to Tradovate: " + ", ".join(problems) + ".")
