"""Coinbase Advanced Trade in its documented shapes (https://docs.cdp.coinbase.com/advanced-trade/reference)."""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING

from integrations.providers.ccxt_fake import FakeVenue, json_response

if TYPE_CHECKING:  # werkzeug comes with pytest-httpserver, a test requirement
    from werkzeug import Request, Response


class FakeCoinbase(FakeVenue):
    """Advanced Trade's ``/api/v3/brokerage`` (products, orders, fills) and the ``/v2`` accounts and currencies
    ccxt reads balances and currency codes from."""

    name = "coinbase"
    PRODUCTS = ("BTC-USD", "ETH-USD", "BTC-USDC")
    _STATUS = {"open": "OPEN", "filled": "FILLED", "canceled": "CANCELLED"}

    def serve(self) -> None:
        self.route(
            "/v2/currencies",
            lambda r: json_response({"data": [{"id": "USD", "name": "US Dollar", "min_size": "0.01"}]}),
        )
        self.route(
            "/v2/currencies/crypto",
            lambda r: json_response(
                {
                    "data": [
                        {
                            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, c)),
                            "code": c,
                            "name": c,
                            "color": "#F7931A",
                            "sort_index": 100,
                            "exponent": 8,
                            "type": "crypto",
                            "address_regex": ".*",
                        }
                        for c in ("BTC", "ETH", "USDC")
                    ]
                }
            ),
        )
        self.route(
            "/v2/exchange-rates",
            lambda r: json_response(
                {"data": {"currency": "USD", "rates": {"BTC": "0.00002", "ETH": "0.0003", "USDC": "1"}}}
            ),
        )
        self.route("/api/v3/brokerage/market/products", self.products)
        self.route("/api/v3/brokerage/market/product_book", self.product_book)
        self.route(
            "/api/v3/brokerage/transaction_summary",
            lambda r: json_response(
                {
                    "total_volume": 0,
                    "total_fees": 0,
                    "fee_tier": {
                        "pricing_tier": "",
                        "usd_from": "0",
                        "usd_to": "10000",
                        "taker_fee_rate": "0.006",
                        "maker_fee_rate": "0.004",
                    },
                }
            ),
        )
        self.route("/api/v3/brokerage/orders", self.create, "POST")
        self.route(
            re.compile(r"^/api/v3/brokerage/orders/historical/(?!batch|fills)[^/]+$"),
            lambda r: json_response({"order": self.coinbase_order(r.path.rsplit("/", 1)[1])}),
        )
        self.route("/api/v3/brokerage/orders/historical/batch", self.batch)
        self.route("/api/v3/brokerage/orders/batch_cancel", self.cancel, "POST")
        self.route(
            "/api/v3/brokerage/orders/historical/fills",
            lambda r: json_response(
                {
                    "fills": [
                        {
                            "entry_id": t["id"],
                            "trade_id": t["id"],
                            "order_id": t["order_id"],
                            "trade_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t["time"])),
                            "trade_type": "FILL",
                            "price": str(t["price"]),
                            "size": str(t["amount"]),
                            "commission": str(t["fee"]),
                            "product_id": t["market"],
                            "sequence_timestamp": "",
                            "liquidity_indicator": "MAKER",
                            "size_in_quote": False,
                            "user_id": "u-1",
                            "side": t["side"].upper(),
                        }
                        for t in self.trades
                    ],
                    "cursor": "",
                }
            ),
        )
        self.route(
            "/v2/accounts",
            lambda r: json_response(
                {
                    "pagination": {
                        "ending_before": None,
                        "starting_after": None,
                        "limit": 250,
                        "order": "desc",
                        "previous_uri": None,
                        "next_uri": None,
                    },
                    "data": [
                        {
                            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, c)),
                            "name": f"{c} Wallet",
                            "primary": True,
                            "type": "wallet",
                            "currency": {"code": c, "name": c},
                            "balance": {"amount": str(q), "currency": c},
                        }
                        for c, q in self.balances.items()
                    ],
                }
            ),
        )

    def market_id(self, symbol: str) -> str:
        return symbol.replace("/", "-")

    def product_book(self, request: Request) -> Response:
        """``GET /api/v3/brokerage/market/product_book?product_id=&limit=``: ``{"pricebook": {"product_id",
        "bids": [{"price", "size"}], "asks": [...], "time"}}``
        (https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getpublicproductbook)."""
        if self.books_down:
            return self.outage()
        product_id = request.args["product_id"]
        levels = self.levels(product_id)
        if levels is None:
            return json_response({"error": "NOT_FOUND", "message": "product not found"}, status=404)
        bids, asks = ([{"price": f"{p:.2f}", "size": f"{q:.8f}"} for p, q in side] for side in levels)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".533606Z"
        return json_response({"pricebook": {"product_id": product_id, "bids": bids, "asks": asks, "time": stamp}})

    def products(self, request: Request) -> Response:
        if request.args.get("product_type") == "FUTURE":
            return json_response({"products": [], "num_products": 0})
        return json_response(
            {
                "products": [
                    {
                        "product_id": p,
                        "price": "50000",
                        "base_increment": "0.00000001",
                        "quote_increment": "0.01",
                        "quote_min_size": "1",
                        "quote_max_size": "10000000",
                        "base_min_size": "0.00000001",
                        "base_max_size": "3400",
                        "base_name": p.split("-")[0],
                        "quote_name": p.split("-")[1],
                        "watched": False,
                        "is_disabled": False,
                        "new": False,
                        "status": "online",
                        "cancel_only": False,
                        "limit_only": False,
                        "post_only": False,
                        "trading_disabled": False,
                        "auction_mode": False,
                        "product_type": "SPOT",
                        "quote_currency_id": p.split("-")[1],
                        "base_currency_id": p.split("-")[0],
                        "fcm_trading_session_details": None,
                        "mid_market_price": "",
                    }
                    for p in self.PRODUCTS
                ],
                "num_products": len(self.PRODUCTS),
            }
        )

    def create(self, request: Request) -> Response:
        body = request.get_json()
        self.sent.append(body)
        ((kind, config),) = body["order_configuration"].items()
        amount = config.get("base_size") or config["quote_size"]
        order_id = self.new_order(
            client_order_id=body["client_order_id"],
            market=body["product_id"],
            side=body["side"].lower(),
            amount=float(amount),
            price=float(config["limit_price"]) if "limit_price" in config else None,
            order_type="limit" if kind.startswith("limit") else "market",
        )
        self.orders[order_id]["configuration"] = body["order_configuration"]
        return json_response(
            {
                "success": True,
                "success_response": {
                    "order_id": order_id,
                    "product_id": body["product_id"],
                    "side": body["side"],
                    "client_order_id": body["client_order_id"],
                },
                "order_configuration": body["order_configuration"],
            }
        )

    def batch(self, request: Request) -> Response:
        wanted = request.args.getlist("order_status")
        rows = [
            self.coinbase_order(i) for i, o in self.orders.items() if not wanted or self._STATUS[o["status"]] in wanted
        ]
        return json_response({"orders": rows, "sequence": "0", "has_next": False, "cursor": ""})

    def cancel(self, request: Request) -> Response:
        results = []
        for order_id in request.get_json()["order_ids"]:
            self.orders[order_id]["status"] = "canceled"
            results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order_id})
        return json_response({"results": results})

    def coinbase_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {
            "order_id": order_id,
            "product_id": o["market"],
            "user_id": "u-1",
            "order_configuration": o["configuration"],
            "side": o["side"].upper(),
            "client_order_id": o["client_order_id"],
            "status": self._STATUS[o["status"]],
            "time_in_force": "GOOD_UNTIL_CANCELLED",
            "created_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(o["time"])),
            "completion_percentage": "100" if o["status"] == "filled" else "0",
            "filled_size": str(o["filled"]),
            "average_filled_price": str(o.get("average", 0)),
            "fee": "",
            "number_of_fills": "1" if o["filled"] else "0",
            "filled_value": str(o["filled"] * o.get("average", 0)),
            "pending_cancel": False,
            "size_in_quote": False,
            "total_fees": "0.5" if o["filled"] else "0",
            "size_inclusive_of_fees": False,
            "total_value_after_fees": "0",
            "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": o["type"].upper(),
            "reject_reason": "",
            "settled": o["status"] == "filled",
            "product_type": "SPOT",
            "reject_message": "",
            "cancel_message": "",
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0",
            "is_liquidation": False,
            "last_fill_time": None,
            "edit_history": [],
            "leverage": "",
            "margin_type": "UNKNOWN_MARGIN_TYPE",
        }
