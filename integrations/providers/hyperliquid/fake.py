"""Hyperliquid's info and exchange endpoints in their documented shapes
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from integrations.providers.ccxt_fake import FakeVenue, json_response

if TYPE_CHECKING:  # werkzeug comes with pytest-httpserver, a test requirement
    from werkzeug import Request, Response


class FakeHyperliquid(FakeVenue):
    """Hyperliquid's two endpoints: ``POST /info`` (reads, by ``type``) and ``POST /exchange`` (signed actions).
    Perpetuals are named by coin and traded by asset index (the coin's place in ``meta.universe``)."""

    name = "hyperliquid"
    UNIVERSE = ("BTC", "ETH")
    ACCOUNT = "0x" + "1" * 40  # HYPERLIQUID_WALLET_ADDRESS of the test keys (crypto_venues.base)
    _STATUS = {"open": "open", "filled": "filled", "canceled": "canceled"}

    def order_id(self) -> str:
        return str(5063830000 + len(self.orders))

    def market_id(self, symbol: str) -> str:
        return symbol.split("/")[0]

    def serve(self) -> None:
        self.actions: list[dict] = []
        self.contexts: dict[str, dict] = {}  # coin -> asset-context fields that differ (funding, markPx, oraclePx)
        self.route("/info", self.info, "POST")
        self.route("/exchange", self.exchange, "POST")

    def info(self, request: Request) -> Response:
        body = request.get_json()
        kind = body["type"]
        if kind == "spotMeta":
            return json_response(
                {
                    "universe": [],
                    "tokens": [
                        {
                            "name": "USDC",
                            "szDecimals": 8,
                            "weiDecimals": 8,
                            "index": 0,
                            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
                            "isCanonical": True,
                            "evmContract": None,
                            "fullName": None,
                        }
                    ],
                }
            )
        if kind == "metaAndAssetCtxs":
            return json_response(
                [
                    {
                        "universe": [
                            {"szDecimals": 5 if c == "BTC" else 4, "name": c, "maxLeverage": 40, "marginTableId": 56}
                            for c in self.UNIVERSE
                        ],
                        "marginTables": [],
                    },
                    [
                        {
                            "funding": "0.0000125",
                            "openInterest": "10000.0",
                            "prevDayPx": "50000.0",
                            "dayNtlVlm": "1000000.0",
                            "premium": "0.0",
                            "oraclePx": "50000.0",
                            "markPx": "50000.0",
                            "midPx": "50000.5",
                            "impactPxs": ["50000.0", "50001.0"],
                            "dayBaseVlm": "20.0",
                            **self.contexts.get(coin, {}),
                        }
                        for coin in self.UNIVERSE
                    ],
                ]
            )
        if kind == "l2Book":  # levels: [bids, asks], each [{"px", "sz", "n"}], best first
            if self.books_down:
                return self.outage()
            levels = self.levels(body["coin"])
            if levels is None:
                return json_response(None)
            return json_response(
                {
                    "coin": body["coin"],
                    "time": int(time.time() * 1000),
                    "levels": [[{"px": f"{p:.1f}", "sz": f"{q:.5f}", "n": 3} for p, q in side] for side in levels],
                }
            )
        if kind == "userRole":  # verify: the key is an API wallet of the configured account (trade-only)
            return json_response({"role": "agent", "data": {"user": self.ACCOUNT}})
        if kind == "userAbstraction":
            return json_response("default")
        if kind == "orderStatus":
            wanted = str(body["oid"])
            order_id = (
                wanted
                if wanted in self.orders
                else next((i for i, o in self.orders.items() if o["client_order_id"] == wanted), None)
            )
            if order_id is None:
                return json_response({"status": "unknownOid"})
            return json_response({"status": "order", "order": self.with_status(order_id)})
        if kind in ("frontendOpenOrders", "openOrders"):
            return json_response([self.hl_order(i) for i, o in self.orders.items() if o["status"] == "open"])
        if kind == "historicalOrders":
            return json_response([self.with_status(i) for i in self.orders])
        if kind in ("userFills", "userFillsByTime"):
            return json_response(
                [
                    {
                        "coin": t["market"],
                        "px": str(t["price"]),
                        "sz": str(t["amount"]),
                        "side": "B" if t["side"] == "buy" else "A",
                        "time": int(t["time"] * 1000),
                        "startPosition": "0.0",
                        "dir": "Open Long",
                        "closedPnl": "0.0",
                        "hash": "0x" + "ab" * 32,
                        "oid": int(t["order_id"]),
                        "crossed": True,
                        "fee": str(t["fee"]),
                        "tid": 900 + n,
                        "feeToken": "USDC",
                    }
                    for n, t in enumerate(self.trades)
                ]
            )
        if kind == "clearinghouseState":
            return json_response(
                {
                    "assetPositions": [
                        {
                            "type": "oneWay",
                            "position": {
                                "coin": coin,
                                "szi": str(size),
                                "leverage": {"type": "cross", "value": 20},
                                "entryPx": "50000.0",
                                "positionValue": str(abs(size) * 50000),
                                "unrealizedPnl": "0.0",
                                "returnOnEquity": "0.0",
                                "liquidationPx": None,
                                "marginUsed": str(abs(size) * 2500),
                                "maxLeverage": 40,
                                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                            },
                        }
                        for coin, size in self.positions.items()
                    ],
                    "crossMarginSummary": {
                        "accountValue": "10000.0",
                        "totalNtlPos": "0.0",
                        "totalRawUsd": "10000.0",
                        "totalMarginUsed": "0.0",
                    },
                    "marginSummary": {
                        "accountValue": "10000.0",
                        "totalNtlPos": "0.0",
                        "totalRawUsd": "10000.0",
                        "totalMarginUsed": "0.0",
                    },
                    "crossMaintenanceMarginUsed": "0.0",
                    "withdrawable": "10000.0",
                    "time": int(time.time() * 1000),
                }
            )
        return json_response({"error": f"unknown info type {kind}"}, status=422)

    def exchange(self, request: Request) -> Response:
        body = request.get_json()
        action = body["action"]
        self.actions.append(action)
        if action["type"] == "order":
            statuses = []
            for wire in action["orders"]:
                self.sent.append(wire)
                order_id = self.new_order(
                    client_order_id=wire.get("c", ""),
                    market=self.UNIVERSE[wire["a"]],
                    side="buy" if wire["b"] else "sell",
                    amount=float(wire["s"]),
                    price=float(wire["p"]),
                    order_type="market" if wire["t"].get("limit", {}).get("tif") == "Ioc" else "limit",
                )
                statuses.append({"resting": {"oid": int(order_id)}})
            return json_response({"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}})
        if action["type"] == "noop":  # verify's signed no-op
            return json_response({"status": "ok", "response": {"type": "default"}})
        if action["type"] == "cancel":
            for cancel in action["cancels"]:
                self.orders[str(cancel["o"])]["status"] = "canceled"
            return json_response(
                {
                    "status": "ok",
                    "response": {"type": "cancel", "data": {"statuses": ["success" for _ in action["cancels"]]}},
                }
            )
        return json_response({"status": "err", "response": f"unexpected action {action['type']}"})

    def sent_market(self, wire: dict) -> int:
        return wire["a"]

    def hl_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {
            "coin": o["market"],
            "side": "B" if o["side"] == "buy" else "A",
            "limitPx": str(o["price"]),
            "sz": str(o["amount"] - o["filled"]),
            "oid": int(order_id),
            "timestamp": int(o["time"] * 1000),
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": False,
            "orderType": "Limit",
            "origSz": str(o["amount"]),
            "tif": "Gtc",
            "cloid": o["client_order_id"] or None,
        }

    def with_status(self, order_id: str) -> dict:
        return {
            "order": self.hl_order(order_id),
            "status": self._STATUS[self.orders[order_id]["status"]],
            "statusTimestamp": int(time.time() * 1000),
        }
