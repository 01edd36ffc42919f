"""Kraken's REST API in its documented shapes (https://docs.kraken.com/api-reference)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from integrations.providers.ccxt_fake import FakeVenue, form_of, json_response

if TYPE_CHECKING:  # werkzeug comes with pytest-httpserver, a test requirement
    from werkzeug import Request, Response


class FakeKraken(FakeVenue):
    """Kraken's REST API: ``{"error": [], "result": ...}``; private calls are form-encoded POSTs."""

    name = "kraken"
    PAIRS = {"XXBTZUSD": ("XBTUSD", "XXBT", "ZUSD"), "XETHZUSD": ("ETHUSD", "XETH", "ZUSD")}
    ASSETS = {"XXBT": "XBT", "XETH": "ETH", "ZUSD": "USD"}
    _STATUS = {"open": "open", "filled": "closed", "canceled": "canceled"}

    def order_id(self) -> str:
        part = uuid.uuid4().hex.upper()
        return f"O{part[:5]}-{part[5:10]}-{part[10:16]}"  # Kraken's txid form, e.g. OQCLML-BW3P3-BUCMWZ

    def serve(self) -> None:
        ok = lambda result: json_response({"error": [], "result": result})  # noqa: E731
        self.route(
            "/0/public/Assets",
            lambda r: ok(
                {
                    asset_id: {
                        "aclass": "currency",
                        "altname": altname,
                        "decimals": 10,
                        "display_decimals": 5,
                        "status": "enabled",
                    }
                    for asset_id, altname in self.ASSETS.items()
                }
            ),
        )
        self.route(
            "/0/public/AssetPairs",
            lambda r: ok(
                {
                    pair_id: {
                        "altname": altname,
                        "wsname": f"{self.ASSETS[base]}/{self.ASSETS[quote]}",
                        "aclass_base": "currency",
                        "base": base,
                        "aclass_quote": "currency",
                        "quote": quote,
                        "lot": "unit",
                        "cost_decimals": 5,
                        "pair_decimals": 1,
                        "lot_decimals": 8,
                        "lot_multiplier": 1,
                        "leverage_buy": [2, 3],
                        "leverage_sell": [2, 3],
                        "fees": [[0, 0.4]],
                        "fees_maker": [[0, 0.25]],
                        "fee_volume_currency": "ZUSD",
                        "margin_call": 80,
                        "margin_stop": 40,
                        "ordermin": "0.00005",
                        "costmin": "0.5",
                        "tick_size": "0.1",
                        "status": "online",
                    }
                    for pair_id, (altname, base, quote) in self.PAIRS.items()
                }
            ),
        )
        self.route("/0/public/Depth", self.depth)
        self.route("/0/private/AddOrder", self.add_order, "POST")
        self.route(
            "/0/private/QueryOrders",
            lambda r: ok({i: self.kraken_order(i) for i in form_of(r)["txid"].split(",") if i in self.orders}),
            "POST",
        )
        self.route(
            "/0/private/OpenOrders",
            lambda r: ok({"open": {i: self.kraken_order(i) for i, o in self.orders.items() if o["status"] == "open"}}),
            "POST",
        )
        self.route(
            "/0/private/ClosedOrders",
            lambda r: ok(
                {
                    "closed": {i: self.kraken_order(i) for i, o in self.orders.items() if o["status"] != "open"},
                    "count": 0,
                }
            ),
            "POST",
        )
        self.route("/0/private/CancelOrder", self.cancel, "POST")
        self.route(
            "/0/private/TradesHistory",
            lambda r: ok(
                {
                    "trades": {
                        t["id"]: {
                            "ordertxid": t["order_id"],
                            "postxid": "TKH2SE-M7IF5-CFI7LT",
                            "pair": t["market"],
                            "time": t["time"],
                            "type": t["side"],
                            "ordertype": "limit",
                            "price": str(t["price"]),
                            "cost": str(t["price"] * t["amount"]),
                            "fee": str(t["fee"]),
                            "vol": str(t["amount"]),
                            "margin": "0.00000",
                            "misc": "",
                            "trade_id": 1,
                            "maker": True,
                        }
                        for t in self.trades
                    },
                    "count": len(self.trades),
                }
            ),
            "POST",
        )
        # Verify's calls, answered as to a trade-only key: Balance, and WithdrawMethods refused
        # (integrations.providers.kraken.client.KrakenClient reads that refusal as "cannot withdraw").
        self.route(
            "/0/private/Balance",
            lambda r: ok(
                {
                    next((i for i, a in self.ASSETS.items() if a == ("XBT" if c == "BTC" else c)), c): str(q)
                    for c, q in self.balances.items()
                }
            ),
            "POST",
        )
        self.route(
            "/0/private/WithdrawMethods", lambda r: json_response({"error": ["EGeneral:Permission denied"]}), "POST"
        )
        self.route(
            "/0/private/BalanceEx",
            lambda r: ok(
                {
                    next((i for i, a in self.ASSETS.items() if a == ("XBT" if c == "BTC" else c)), c): {
                        "balance": str(q),
                        "hold_trade": "0",
                    }
                    for c, q in self.balances.items()
                }
            ),
            "POST",
        )

    def market_id(self, symbol: str) -> str:
        base, quote = symbol.replace("BTC", "XBT").split("/")
        return next(p for p, (_, b, q) in self.PAIRS.items() if self.ASSETS[b] == base and self.ASSETS[q] == quote)

    def depth(self, request: Request) -> Response:
        """``GET /0/public/Depth?pair=&count=``: levels as [price, volume, timestamp] strings
        (https://docs.kraken.com/api/docs/rest-api/get-order-book)."""
        if self.books_down:
            return self.outage()
        pair = request.args["pair"]
        levels = self.levels(pair)
        if levels is None:
            return json_response({"error": ["EQuery:Unknown asset pair"]})
        now = int(time.time())
        bids, asks = ([[f"{p:.1f}", f"{q:.8f}", now] for p, q in side] for side in levels)
        return json_response({"error": [], "result": {pair: {"asks": asks, "bids": bids}}})

    # Set to one of Kraken's documented error strings (e.g. "EOrder:Insufficient funds") to refuse every order.
    refuse_orders: str = ""

    def add_order(self, request: Request) -> Response:
        body = form_of(request)
        self.sent.append(body)
        if self.refuse_orders:
            return json_response({"error": [self.refuse_orders]})
        order_id = self.new_order(
            client_order_id=body.get("cl_ord_id", ""),
            market=body["pair"],
            side=body["type"],
            amount=float(body["volume"]),
            price=float(body["price"]) if "price" in body else None,
            order_type=body["ordertype"],
        )
        return json_response(
            {"error": [], "result": {"descr": {"order": self.description(order_id)}, "txid": [order_id]}}
        )

    def cancel(self, request: Request) -> Response:
        order = self.orders[form_of(request)["txid"]]
        order["status"] = "canceled"
        return json_response({"error": [], "result": {"count": 1}})

    def description(self, order_id: str) -> str:
        o = self.orders[order_id]
        altname = self.PAIRS[o["market"]][0]
        at = f"limit {o['price']}" if o["type"] == "limit" else "market"
        return f"{o['side']} {o['amount']:.8f} {altname} @ {at}"

    def kraken_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {
            "refid": None,
            "userref": None,
            "cl_ord_id": o["client_order_id"],
            "status": self._STATUS[o["status"]],
            "opentm": o["time"],
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": self.PAIRS[o["market"]][0],
                "type": o["side"],
                "ordertype": o["type"],
                "price": str(o["price"] or 0),
                "price2": "0",
                "leverage": "none",
                "order": self.description(order_id),
                "close": "",
            },
            "vol": f"{o['amount']:.8f}",
            "vol_exec": f"{o['filled']:.8f}",
            "cost": "0.00000",
            "fee": "0.00000",
            "price": str(o.get("average", 0)),
            "stopprice": "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": "fciq",
        }
