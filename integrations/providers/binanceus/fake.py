"""Binance.US's spot API in its documented shapes (https://docs.binance.us)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from integrations.providers.ccxt_fake import FakeVenue, form_of, json_response

if TYPE_CHECKING:  # werkzeug comes with pytest-httpserver, a test requirement
    from werkzeug import Request, Response


class FakeBinanceUS(FakeVenue):
    """Binance.US's ``/api/v3`` spot API: signed calls carry their parameters in the query string or form body."""

    name = "binanceus"
    SYMBOLS = {"BTCUSD": ("BTC", "USD"), "ETHUSD": ("ETH", "USD")}
    _STATUS = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED"}
    fee_asset = "USD"  # the account pays fees in the quote currency unless it opted into BNB

    def order_id(self) -> str:
        return str(100000 + len(self.orders))

    def serve(self) -> None:
        self.route(
            "/api/v3/exchangeInfo",
            lambda r: json_response(
                {
                    "timezone": "UTC",
                    "serverTime": int(time.time() * 1000),
                    "rateLimits": [],
                    "exchangeFilters": [],
                    "symbols": [
                        {
                            "symbol": s,
                            "status": "TRADING",
                            "baseAsset": b,
                            "baseAssetPrecision": 8,
                            "quoteAsset": q,
                            "quotePrecision": 4,
                            "quoteAssetPrecision": 4,
                            "baseCommissionPrecision": 8,
                            "quoteCommissionPrecision": 2,
                            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                            "icebergAllowed": True,
                            "ocoAllowed": True,
                            "quoteOrderQtyMarketAllowed": True,
                            "allowTrailingStop": False,
                            "cancelReplaceAllowed": False,
                            "isSpotTradingAllowed": True,
                            "isMarginTradingAllowed": False,
                            "filters": [
                                {
                                    "filterType": "PRICE_FILTER",
                                    "minPrice": "0.01",
                                    "maxPrice": "1000000.00",
                                    "tickSize": "0.01",
                                },
                                {
                                    "filterType": "LOT_SIZE",
                                    "minQty": "0.00000100",
                                    "maxQty": "9000.00000000",
                                    "stepSize": "0.00000100",
                                },
                                {
                                    "filterType": "NOTIONAL",
                                    "minNotional": "1.00",
                                    "applyMinToMarket": True,
                                    "maxNotional": "9000000.00",
                                    "applyMaxToMarket": False,
                                    "avgPriceMins": 5,
                                },
                            ],
                            "permissions": ["SPOT"],
                            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
                        }
                        for s, (b, q) in self.SYMBOLS.items()
                    ],
                }
            ),
        )
        self.route("/api/v3/depth", self.depth)
        self.route("/api/v3/order", self.create, "POST")
        self.route("/api/v3/order", lambda r: self.found(self._params(r)), "GET")
        self.route("/api/v3/order", self.cancel, "DELETE")
        self.route(
            "/api/v3/openOrders",
            lambda r: json_response([self.binance_order(i) for i, o in self.orders.items() if o["status"] == "open"]),
        )
        self.route("/api/v3/allOrders", lambda r: json_response([self.binance_order(i) for i in self.orders]))
        self.route(
            "/api/v3/myTrades",
            lambda r: json_response(
                [
                    {
                        "symbol": t["market"],
                        "id": 28000 + n,
                        "orderId": int(t["order_id"]),
                        "orderListId": -1,
                        "price": str(t["price"]),
                        "qty": str(t["amount"]),
                        "quoteQty": str(t["price"] * t["amount"]),
                        "commission": str(t["fee"]),
                        "commissionAsset": self.fee_asset,
                        "time": int(t["time"] * 1000),
                        "isBuyer": t["side"] == "buy",
                        "isMaker": True,
                        "isBestMatch": True,
                    }
                    for n, t in enumerate(self.trades)
                ]
            ),
        )
        self.route(
            "/api/v3/account",
            lambda r: json_response(
                {
                    "makerCommission": 10,
                    "takerCommission": 10,
                    "buyerCommission": 0,
                    "sellerCommission": 0,
                    "canTrade": True,
                    "canWithdraw": False,
                    "canDeposit": True,
                    "updateTime": int(time.time() * 1000),
                    "accountType": "SPOT",
                    "permissions": ["SPOT"],
                    "balances": [
                        {"asset": c, "free": str(q), "locked": "0.00000000"} for c, q in self.balances.items()
                    ],
                }
            ),
        )

    @staticmethod
    def _params(request: Request) -> dict:
        return {**request.args.to_dict(), **form_of(request)}

    def market_id(self, symbol: str) -> str:
        return symbol.replace("/", "")

    def depth(self, request: Request) -> Response:
        """``GET /api/v3/depth?symbol=&limit=``: ``{"lastUpdateId", "bids": [[price, qty]], "asks": [...]}``
        (https://docs.binance.us/#get-order-book-depth)."""
        if self.books_down:
            return self.outage()
        levels = self.levels(request.args["symbol"])
        if levels is None:
            return json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        bids, asks = ([[f"{p:.2f}", f"{q:.8f}"] for p, q in side] for side in levels)
        return json_response({"lastUpdateId": 1027024, "bids": bids, "asks": asks})

    def create(self, request: Request) -> Response:
        body = self._params(request)
        self.sent.append(body)
        order_id = self.new_order(
            client_order_id=body.get("newClientOrderId", ""),
            market=body["symbol"],
            side=body["side"].lower(),
            amount=float(body["quantity"]),
            price=float(body["price"]) if "price" in body else None,
            order_type=body["type"].lower(),
        )
        return json_response({**self.binance_order(order_id), "transactTime": int(time.time() * 1000), "fills": []})

    def found(self, params: dict) -> Response:
        order_id = params.get("orderId") or self.by_client_id(params["origClientOrderId"])
        if order_id not in self.orders:
            return json_response({"code": -2013, "msg": "Order does not exist."}, status=400)
        return json_response(self.binance_order(order_id))

    def cancel(self, request: Request) -> Response:
        order_id = self._params(request)["orderId"]
        self.orders[order_id]["status"] = "canceled"
        return json_response(self.binance_order(order_id))

    def binance_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {
            "symbol": o["market"],
            "orderId": int(order_id),
            "orderListId": -1,
            "clientOrderId": o["client_order_id"],
            "price": str(o["price"] or "0.00"),
            "origQty": str(o["amount"]),
            "executedQty": str(o["filled"]),
            "cummulativeQuoteQty": str(o["filled"] * o.get("average", 0)),
            "status": self._STATUS[o["status"]],
            "timeInForce": "GTC",
            "type": o["type"].upper(),
            "side": o["side"].upper(),
            "stopPrice": "0.00",
            "icebergQty": "0.00",
            "time": int(o["time"] * 1000),
            "updateTime": int(o["time"] * 1000),
            "isWorking": True,
            "workingTime": int(o["time"] * 1000),
            "origQuoteOrderQty": "0.00",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
