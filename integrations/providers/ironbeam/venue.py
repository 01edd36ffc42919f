"""Ironbeam behind the OMS.

Ironbeam's order request has no client order id, so before each send the ledger keeps the order's fingerprint
(symbol, side, quantity, type, prices) and the ids of the account's existing orders. An answer lost to a
timeout or crash is resolved from the order list: exactly one new order with that fingerprint is ours; none
means it never arrived; several is ambiguous and stays uncertain (an operator decides), never re-sent.

A root (``ES``) is sent as its front contract (``XCME:ES.Z26``, see ``integrations.providers.futures_contracts``);
positions come back under the root. Fees: Ironbeam's OrderFill (``/order/{accountId}/fills``) has no fee or
commission field, so its fills are recorded with fee ``None`` (unknown), never an estimate passed off as the
broker's number.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from controlplane.errors import ErrorCode
from integrations.clients import client_for
from integrations.providers.base import IntegrationError
from integrations.providers.futures_contracts import ironbeam_symbol, root_of
from integrations.providers.ironbeam.client import ORDER_TYPES, SIDES, IronbeamClient
from integrations.venues.base import VenueError, VenueFill, VenueOrderAck, VenueOrderRequest, VenueOrderStatus
from integrations.venues.errors import venue_error
from integrations.venues.ledger import SendLedger

_STATUS = {
    "PARTIALLY_FILLED": VenueOrderStatus.PARTIALLY_FILLED,
    "FILLED": VenueOrderStatus.FILLED,
    "COMPLETE": VenueOrderStatus.FILLED,
    "CANCELLED": VenueOrderStatus.CANCELLED,
    "EXPIRED": VenueOrderStatus.CANCELLED,
    "DONE_FOR_DAY": VenueOrderStatus.CANCELLED,
    "STOPPED": VenueOrderStatus.CANCELLED,
    "REJECTED": VenueOrderStatus.REJECTED,
    "INVALID": VenueOrderStatus.REJECTED,
    "ORDER_NOT_FOUND": VenueOrderStatus.REJECTED,
}
_STRATEGY = "strategy-"


class IronbeamVenue:
    name = "ironbeam"

    def __init__(self, *, bot_id: int | None = None, client: IronbeamClient | None = None) -> None:
        self.client: IronbeamClient = client or client_for("ironbeam", bot_id=bot_id)
        self.ledger = SendLedger(self.name)
        self._account_id: str | None = None

    def account_id(self) -> str:
        if self._account_id is None:
            try:
                self._account_id = self.client.account_id()
            except IntegrationError as exc:
                raise venue_error(exc) from exc
        return self._account_id

    def place_order(self, request: VenueOrderRequest) -> VenueOrderAck:
        _check(request)
        request = dataclasses.replace(request, symbol=ironbeam_symbol(request.symbol))
        account_id = self.account_id()
        try:
            existing = [_ids(o) for o in self.client.orders(account_id=account_id)]
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        self.ledger.record(request, account_id=account_id, existing=[i for pair in existing for i in pair if i])
        try:
            answer = self.client.place_order(
                account_id=account_id,
                symbol=request.symbol,
                side=request.side,
                quantity=request.quantity,
                order_type=request.order_type,
                limit_price=request.limit_price,
                stop_price=request.stop_price,
            )
        except IntegrationError as exc:
            raise venue_error(exc, sending=True) from exc
        venue_order_id = answer["orderId"] or f"{_STRATEGY}{answer['strategyId']}"
        self.ledger.bind(request.client_order_id, venue_order_id)
        return VenueOrderAck(
            venue_order_id=venue_order_id,
            client_order_id=request.client_order_id,
            status=VenueOrderStatus.WORKING,
            raw=answer,
        )

    def lookup_order(self, *, client_order_id: str, venue_order_id: str | None = None) -> VenueOrderAck | None:
        sent = self.ledger.get(client_order_id)
        if venue_order_id is None and sent is None:
            return None  # the record is written before every send: without one, nothing was sent
        account_id = sent["account_id"] if sent else self.account_id()
        try:
            orders = self.client.orders(account_id=account_id)
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        if venue_order_id:
            matches = [o for o in orders if venue_order_id in _ids(o)]
        else:
            known = set(sent["existing"])
            matches = [o for o in orders if not known.intersection(_ids(o)) and _same_order(o, sent)]
        if not matches:
            return None
        if len(matches) > 1:
            raise VenueError(
                ErrorCode.CONFLICT,
                f"{len(matches)} new Ironbeam orders match {client_order_id}; resolve it at the venue.",
                uncertain=True,
            )
        order = matches[0]
        venue_id = str(order.get("orderId") or f"{_STRATEGY}{order.get('strategyId')}")
        self.ledger.bind(client_order_id, venue_id)
        return _ack(order, client_order_id, venue_id)

    def cancel_order(self, *, client_order_id: str, venue_order_id: str | None) -> VenueOrderAck:
        ack = self.lookup_order(client_order_id=client_order_id, venue_order_id=venue_order_id)
        if ack is None:
            raise VenueError(ErrorCode.NOT_FOUND, f"Ironbeam has no order for {client_order_id}.")
        if ack.status in (VenueOrderStatus.FILLED, VenueOrderStatus.CANCELLED, VenueOrderStatus.REJECTED):
            return ack
        try:
            orders = self.client.cancel_order(account_id=self.account_id(), order_id=ack.raw["orderId"])
        except IntegrationError as exc:
            raise venue_error(exc, sending=True) from exc
        mine = [o for o in orders if str(o.get("orderId")) == ack.raw["orderId"]]
        return _ack(mine[0], client_order_id, ack.venue_order_id) if mine else ack

    def fills_since(self, since: datetime) -> list[VenueFill]:
        try:
            fills = self.client.fills(account_id=self.account_id())
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        result = []
        for fill in fills:
            ts = datetime.fromisoformat(str(fill["fillDate"]).replace("Z", "+00:00"))
            if ts < since or not fill.get("fillQuantity"):
                continue
            order_id = str(fill.get("orderId") or "")
            result.append(
                VenueFill(
                    venue_fill_id=str(fill.get("orderUpdateId") or f"{order_id}:{fill.get('timeOrderEvent')}"),
                    venue_order_id=order_id,
                    client_order_id=self.ledger.client_order_id_for(order_id),
                    quantity=Decimal(str(fill["fillQuantity"])),
                    price=Decimal(str(fill["fillPrice"])),
                    fee=None,
                    ts=ts,
                )
            )
        return result

    def positions(self) -> dict[str, Decimal]:
        try:
            rows = self.client.positions(account_id=self.account_id())
        except IntegrationError as exc:
            raise venue_error(exc) from exc
        result: dict[str, Decimal] = {}
        for row in rows:
            quantity = abs(Decimal(str(row["quantity"])))
            signed = -quantity if row.get("side") == "SHORT" else quantity
            root = root_of(row["exchSym"])
            result[root] = result.get(root, Decimal("0")) + signed
        return {symbol: q for symbol, q in result.items() if q}


def _ids(order: dict) -> tuple[str, str]:
    strategy = order.get("strategyId")
    return (str(order.get("orderId") or ""), f"{_STRATEGY}{strategy}" if strategy is not None else "")


def _same_order(order: dict, sent: dict) -> bool:
    def price(value):
        return None if value in (None, "None") else Decimal(str(value))

    return (
        order.get("exchSym") == sent["symbol"]
        and order.get("side") == SIDES[sent["side"]]
        and Decimal(str(order.get("quantity"))) == Decimal(sent["quantity"])
        and str(order.get("orderType")) in (ORDER_TYPES[sent["order_type"]], sent["order_type"].upper())
        and (sent["order_type"] != "limit" or price(order.get("limitPrice")) == price(sent["limit_price"]))
        and (sent["order_type"] != "stop" or price(order.get("stopPrice")) == price(sent["stop_price"]))
    )


def _ack(order: dict, client_order_id: str, venue_order_id: str) -> VenueOrderAck:
    filled = Decimal(str(order.get("fillQuantity") or 0))
    status = _STATUS.get(order.get("status"), VenueOrderStatus.WORKING)
    if status == VenueOrderStatus.WORKING and filled > 0:
        status = VenueOrderStatus.PARTIALLY_FILLED
    error = order.get("orderError") or {}
    return VenueOrderAck(
        venue_order_id=venue_order_id,
        client_order_id=client_order_id,
        status=status,
        filled_quantity=filled,
        average_price=Decimal(str(order["fillPrice"])) if filled and order.get("fillPrice") is not None else None,
        reason=str(error.get("errorText") or order.get("status") or "") if status == VenueOrderStatus.REJECTED else "",
        raw={**order, "orderId": str(order.get("orderId") or "")},
    )


def _check(request: VenueOrderRequest) -> None:
    problems = []
    if request.order_type not in ORDER_TYPES:
        problems.append(f"order type {request.order_type!r}")
    if request.side not in SIDES:
        problems.append(f"side {request.side!r}")
    if request.quantity <= 0 or request.quantity != request.quantity.to_integral_value():
        problems.append(f"quantity {request.quantity} (whole contracts only)")
    if request.order_type == "limit" and request.limit_price is None:
        problems.append("a limit order without limit_price")
    if request.order_type == "stop" and request.stop_price is None:
        problems.append("a stop order without stop_price")
    if problems:
        raise VenueError(ErrorCode.ORDER_REJECTED, "Not sent to Ironbeam: " + ", ".join(problems) + ".")
