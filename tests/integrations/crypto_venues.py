"""Coinbase (Advanced Trade), Kraken, Binance.US and Hyperliquid as local HTTP servers, each answering ccxt in the
venue's documented REST shapes (the shapes ccxt's own parsers quote from the venues' API references), so tests
run the real ccxt code and our real client against an account kept in memory.

Each fake keeps what a venue keeps: its market list, the orders sent to it (with the client order id they
carried), the fills of those orders and the account's balances or positions. A test fills or cancels an order
the way the venue would (``fill``), then reads it back through the adapter.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import parse_qs

from werkzeug import Request, Response

from execution.models import Instrument
from integrations import services

KEYS = {"kraken": {"KRAKEN_API_KEY": "kr-abcdefghijkl", "KRAKEN_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0"},
        "coinbase": {"COINBASE_API_KEY": "cb-abcdefghijkl", "COINBASE_API_SECRET": "cb-secret-abcdefghijkl"},
        "binanceus": {"BINANCEUS_API_KEY": "bn-abcdefghijkl", "BINANCEUS_API_SECRET": "bn-secret-abcdefghijkl"},
        "hyperliquid": {"HYPERLIQUID_WALLET_ADDRESS": "0x" + "1" * 40,
                        "HYPERLIQUID_PRIVATE_KEY": "0x" + "2" * 64}}

# What each venue's market list yields for our BTC-USD (what map_venue_symbols stores).
BTC_USD = {"kraken": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
           "coinbase": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
           "binanceus": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
           "hyperliquid": {"symbol": "BTC/USDC:USDC", "base": "BTC", "quote": "USDC", "type": "swap"}}


def btc_usd(*venues: str) -> Instrument:
    """The shipped BTC-USD instrument, mapped at ``venues`` (none: unmapped, as a fresh install has it)."""
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {venue: BTC_USD[venue] for venue in venues}
    instrument.save(update_fields=["venue_symbols"])
    return instrument


def set_keys(venue: str, owner) -> None:
    services.credentials_set(provider=venue, values=KEYS[venue], actor=owner)


def live_crypto_bot(*, tenant, owner, venue: str, name: str = "live-btc", instruments=("BTC-USD",)):
    """A LIVE bot on ``venue`` with its keys set (not yet verified)."""
    from bots import services as bot_services
    from bots.models import Bot, Stage
    from controlplane import tenancy

    with tenancy.tenant_context(tenant.id):
        set_keys(venue, owner)
        bot = bot_services.bot_create(actor=owner, name=name, strategy="ma_crossover",
                                      parameters={"fast": 5, "slow": 20}, instruments=list(instruments),
                                      venue=venue, data_source="imported")
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.LIVE)
        bot.refresh_from_db()
    return bot


def booked(bot, symbol: str, quantity, *, venue: str | None = None) -> None:
    """What the OMS leaves after fills of ``quantity`` at the bot's venue: the bot's position and the tenant's
    inventory there (call inside the tenant's context)."""
    from decimal import Decimal

    from execution.models import StrategyPosition, VenueInventory

    instrument = Instrument.objects.get(symbol=symbol)
    StrategyPosition.objects.update_or_create(tenant_id=bot.tenant_id, bot=bot, instrument=instrument,
                                              defaults={"quantity": Decimal(str(quantity)),
                                                        "average_price": Decimal("50000")})
    row, _ = VenueInventory.objects.get_or_create(tenant_id=bot.tenant_id, venue=venue or bot.venue, asset=symbol)
    row.quantity += Decimal(str(quantity))
    row.save(update_fields=["quantity", "updated_at"])


def _json(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _form(request: Request) -> dict:
    return {k: v[-1] for k, v in parse_qs(request.get_data(as_text=True)).items()}


class FakeVenue:
    """An account at one venue. ``sent`` lists the bodies of the order requests that reached it."""

    name = ""

    def __init__(self, server, *, balances: dict | None = None, positions: dict | None = None) -> None:
        self.server = server
        self.orders: dict[str, dict] = {}  # venue order id -> our record (client id, market, side, amount, ...)
        self.trades: list[dict] = []
        self.balances = dict(balances or {})
        self.positions = dict(positions or {})  # perpetuals: coin -> signed size
        self.sent: list[dict] = []
        self.paths: list[str] = []
        self.serve()

    def route(self, path: str, handler, method: str = "GET") -> None:
        def logged(request: Request) -> Response:
            self.paths.append(request.path)
            return handler(request)
        self.server.expect_request(path, method=method).respond_with_handler(logged)

    def new_order(self, *, client_order_id: str, market: str, side: str, amount: float, price: float | None,
                  order_type: str) -> str:
        order_id = self.order_id()
        self.orders[order_id] = {"client_order_id": client_order_id, "market": market, "side": side,
                                 "amount": amount, "price": price, "type": order_type, "status": "open",
                                 "filled": 0.0, "time": time.time()}
        return order_id

    def order_id(self) -> str:
        return str(uuid.uuid4())

    def fill(self, order_id: str, *, price: float, fee: float | None = 0.5) -> None:
        """The whole order executes at ``price``."""
        order = self.orders[order_id]
        order.update(status="filled", filled=order["amount"], average=price)
        self.trades.append({"id": f"T{len(self.trades) + 1}", "order_id": order_id, "amount": order["amount"],
                            "price": price, "fee": fee, "time": time.time(), "side": order["side"],
                            "market": order["market"]})

    def by_client_id(self, client_order_id: str) -> str:
        return next(i for i, o in self.orders.items() if o["client_order_id"] == client_order_id)

    def serve(self) -> None:
        raise NotImplementedError


# --- Kraken (https://docs.kraken.com/api-reference) ----------------------------------------------------------


class FakeKraken(FakeVenue):
    """Kraken's REST API: ``{"error": [], "result": ...}``; private calls are form-encoded POSTs."""

    name = "kraken"
    PAIRS = {"XXBTZUSD": ("XBTUSD", "XXBT", "ZUSD"), "XETHZUSD": ("ETHUSD", "XETH", "ZUSD")}
    ASSETS = {"XXBT": "XBT", "XETH": "ETH", "ZUSD": "USD"}
    _STATUS = {"open": "open", "filled": "closed", "canceled": "canceled"}

    def order_id(self) -> str:
        return "O" + uuid.uuid4().hex[:5].upper() + "-" + uuid.uuid4().hex[:5].upper() + "-" + uuid.uuid4().hex[:6].upper()

    def serve(self) -> None:
        ok = lambda result: _json({"error": [], "result": result})  # noqa: E731
        self.route("/0/public/Assets", lambda r: ok({
            asset_id: {"aclass": "currency", "altname": altname, "decimals": 10, "display_decimals": 5,
                       "status": "enabled"} for asset_id, altname in self.ASSETS.items()}))
        self.route("/0/public/AssetPairs", lambda r: ok({
            pair_id: {"altname": altname, "wsname": f"{self.ASSETS[base]}/{self.ASSETS[quote]}",
                      "aclass_base": "currency", "base": base, "aclass_quote": "currency", "quote": quote,
                      "lot": "unit", "cost_decimals": 5, "pair_decimals": 1, "lot_decimals": 8,
                      "lot_multiplier": 1, "leverage_buy": [2, 3], "leverage_sell": [2, 3],
                      "fees": [[0, 0.4]], "fees_maker": [[0, 0.25]], "fee_volume_currency": "ZUSD",
                      "margin_call": 80, "margin_stop": 40, "ordermin": "0.00005", "costmin": "0.5",
                      "tick_size": "0.1", "status": "online"}
            for pair_id, (altname, base, quote) in self.PAIRS.items()}))
        self.route("/0/private/AddOrder", self.add_order, "POST")
        self.route("/0/private/QueryOrders", lambda r: ok(
            {i: self.kraken_order(i) for i in _form(r)["txid"].split(",") if i in self.orders}), "POST")
        self.route("/0/private/OpenOrders", lambda r: ok({"open": {
            i: self.kraken_order(i) for i, o in self.orders.items() if o["status"] == "open"}}), "POST")
        self.route("/0/private/ClosedOrders", lambda r: ok({"closed": {
            i: self.kraken_order(i) for i, o in self.orders.items() if o["status"] != "open"}, "count": 0}), "POST")
        self.route("/0/private/CancelOrder", self.cancel, "POST")
        self.route("/0/private/TradesHistory", lambda r: ok({"trades": {
            t["id"]: {"ordertxid": t["order_id"], "postxid": "TKH2SE-M7IF5-CFI7LT", "pair": t["market"],
                      "time": t["time"], "type": t["side"], "ordertype": "limit", "price": str(t["price"]),
                      "cost": str(t["price"] * t["amount"]), "fee": str(t["fee"]), "vol": str(t["amount"]),
                      "margin": "0.00000", "misc": "", "trade_id": 1, "maker": True}
            for t in self.trades}, "count": len(self.trades)}), "POST")
        self.route("/0/private/BalanceEx", lambda r: ok({
            next((i for i, a in self.ASSETS.items() if a == ("XBT" if c == "BTC" else c)), c):
                {"balance": str(q), "hold_trade": "0"} for c, q in self.balances.items()}), "POST")

    def add_order(self, request: Request) -> Response:
        body = _form(request)
        self.sent.append(body)
        order_id = self.new_order(client_order_id=body.get("cl_ord_id", ""), market=body["pair"],
                                  side=body["type"], amount=float(body["volume"]),
                                  price=float(body["price"]) if "price" in body else None,
                                  order_type=body["ordertype"])
        return _json({"error": [], "result": {"descr": {"order": self.description(order_id)}, "txid": [order_id]}})

    def cancel(self, request: Request) -> Response:
        order = self.orders[_form(request)["txid"]]
        order["status"] = "canceled"
        return _json({"error": [], "result": {"count": 1}})

    def description(self, order_id: str) -> str:
        o = self.orders[order_id]
        altname = self.PAIRS[o["market"]][0]
        at = f"limit {o['price']}" if o["type"] == "limit" else "market"
        return f"{o['side']} {o['amount']:.8f} {altname} @ {at}"

    def kraken_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {"refid": None, "userref": None, "cl_ord_id": o["client_order_id"],
                "status": self._STATUS[o["status"]], "opentm": o["time"], "starttm": 0, "expiretm": 0,
                "descr": {"pair": self.PAIRS[o["market"]][0], "type": o["side"], "ordertype": o["type"],
                          "price": str(o["price"] or 0), "price2": "0", "leverage": "none",
                          "order": self.description(order_id), "close": ""},
                "vol": f"{o['amount']:.8f}", "vol_exec": f"{o['filled']:.8f}", "cost": "0.00000",
                "fee": "0.00000", "price": str(o.get("average", 0)), "stopprice": "0.00000",
                "limitprice": "0.00000", "misc": "", "oflags": "fciq"}


# --- Coinbase Advanced Trade (https://docs.cdp.coinbase.com/advanced-trade/reference) -------------------------


class FakeCoinbase(FakeVenue):
    """Advanced Trade's ``/api/v3/brokerage`` (products, orders, fills) and the ``/v2`` accounts and currencies
    ccxt reads balances and currency codes from."""

    name = "coinbase"
    PRODUCTS = ("BTC-USD", "ETH-USD", "BTC-USDC")
    _STATUS = {"open": "OPEN", "filled": "FILLED", "canceled": "CANCELLED"}

    def serve(self) -> None:
        self.route("/v2/currencies", lambda r: _json({"data": [
            {"id": "USD", "name": "US Dollar", "min_size": "0.01"}]}))
        self.route("/v2/currencies/crypto", lambda r: _json({"data": [
            {"asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, c)), "code": c, "name": c, "color": "#F7931A",
             "sort_index": 100, "exponent": 8, "type": "crypto", "address_regex": ".*"} for c in ("BTC", "ETH", "USDC")]}))
        self.route("/v2/exchange-rates", lambda r: _json({"data": {"currency": "USD", "rates": {
            "BTC": "0.00002", "ETH": "0.0003", "USDC": "1"}}}))
        self.route("/api/v3/brokerage/market/products", self.products)
        self.route("/api/v3/brokerage/transaction_summary", lambda r: _json({
            "total_volume": 0, "total_fees": 0, "fee_tier": {"pricing_tier": "", "usd_from": "0",
                                                             "usd_to": "10000", "taker_fee_rate": "0.006",
                                                             "maker_fee_rate": "0.004"}}))
        self.route("/api/v3/brokerage/orders", self.create, "POST")
        self.route(re.compile(r"^/api/v3/brokerage/orders/historical/(?!batch|fills)[^/]+$"), lambda r: _json(
            {"order": self.coinbase_order(r.path.rsplit("/", 1)[1])}))
        self.route("/api/v3/brokerage/orders/historical/batch", self.batch)
        self.route("/api/v3/brokerage/orders/batch_cancel", self.cancel, "POST")
        self.route("/api/v3/brokerage/orders/historical/fills", lambda r: _json({"fills": [
            {"entry_id": t["id"], "trade_id": t["id"], "order_id": t["order_id"],
             "trade_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t["time"])),
             "trade_type": "FILL", "price": str(t["price"]), "size": str(t["amount"]),
             "commission": str(t["fee"]), "product_id": t["market"], "sequence_timestamp": "",
             "liquidity_indicator": "MAKER", "size_in_quote": False, "user_id": "u-1", "side": t["side"].upper()}
            for t in self.trades], "cursor": ""}))
        self.route("/v2/accounts", lambda r: _json({
            "pagination": {"ending_before": None, "starting_after": None, "limit": 250, "order": "desc",
                           "previous_uri": None, "next_uri": None},
            "data": [{"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, c)), "name": f"{c} Wallet", "primary": True,
                      "type": "wallet", "currency": {"code": c, "name": c},
                      "balance": {"amount": str(q), "currency": c}} for c, q in self.balances.items()]}))

    def products(self, request: Request) -> Response:
        if request.args.get("product_type") == "FUTURE":
            return _json({"products": [], "num_products": 0})
        return _json({"products": [
            {"product_id": p, "price": "50000", "base_increment": "0.00000001", "quote_increment": "0.01",
             "quote_min_size": "1", "quote_max_size": "10000000", "base_min_size": "0.00000001",
             "base_max_size": "3400", "base_name": p.split("-")[0], "quote_name": p.split("-")[1],
             "watched": False, "is_disabled": False, "new": False, "status": "online", "cancel_only": False,
             "limit_only": False, "post_only": False, "trading_disabled": False, "auction_mode": False,
             "product_type": "SPOT", "quote_currency_id": p.split("-")[1], "base_currency_id": p.split("-")[0],
             "fcm_trading_session_details": None, "mid_market_price": ""} for p in self.PRODUCTS],
            "num_products": len(self.PRODUCTS)})

    def create(self, request: Request) -> Response:
        body = request.get_json()
        self.sent.append(body)
        (kind, config), = body["order_configuration"].items()
        amount = config.get("base_size") or config["quote_size"]
        order_id = self.new_order(client_order_id=body["client_order_id"], market=body["product_id"],
                                  side=body["side"].lower(), amount=float(amount),
                                  price=float(config["limit_price"]) if "limit_price" in config else None,
                                  order_type="limit" if kind.startswith("limit") else "market")
        self.orders[order_id]["configuration"] = body["order_configuration"]
        return _json({"success": True, "success_response": {
            "order_id": order_id, "product_id": body["product_id"], "side": body["side"],
            "client_order_id": body["client_order_id"]}, "order_configuration": body["order_configuration"]})

    def batch(self, request: Request) -> Response:
        wanted = request.args.getlist("order_status")
        rows = [self.coinbase_order(i) for i, o in self.orders.items()
                if not wanted or self._STATUS[o["status"]] in wanted]
        return _json({"orders": rows, "sequence": "0", "has_next": False, "cursor": ""})

    def cancel(self, request: Request) -> Response:
        results = []
        for order_id in request.get_json()["order_ids"]:
            self.orders[order_id]["status"] = "canceled"
            results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON",
                            "order_id": order_id})
        return _json({"results": results})

    def coinbase_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {"order_id": order_id, "product_id": o["market"], "user_id": "u-1",
                "order_configuration": o["configuration"], "side": o["side"].upper(),
                "client_order_id": o["client_order_id"], "status": self._STATUS[o["status"]],
                "time_in_force": "GOOD_UNTIL_CANCELLED",
                "created_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(o["time"])),
                "completion_percentage": "100" if o["status"] == "filled" else "0",
                "filled_size": str(o["filled"]), "average_filled_price": str(o.get("average", 0)),
                "fee": "", "number_of_fills": "1" if o["filled"] else "0",
                "filled_value": str(o["filled"] * o.get("average", 0)), "pending_cancel": False,
                "size_in_quote": False, "total_fees": "0.5" if o["filled"] else "0",
                "size_inclusive_of_fees": False, "total_value_after_fees": "0", "trigger_status": "INVALID_ORDER_TYPE",
                "order_type": o["type"].upper(), "reject_reason": "", "settled": o["status"] == "filled",
                "product_type": "SPOT", "reject_message": "", "cancel_message": "", "order_placement_source": "RETAIL_ADVANCED",
                "outstanding_hold_amount": "0", "is_liquidation": False, "last_fill_time": None,
                "edit_history": [], "leverage": "", "margin_type": "UNKNOWN_MARGIN_TYPE"}


# --- Binance.US (https://docs.binance.us) --------------------------------------------------------------------


class FakeBinanceUS(FakeVenue):
    """Binance.US's ``/api/v3`` spot API: signed calls carry their parameters in the query string or form body."""

    name = "binanceus"
    SYMBOLS = {"BTCUSD": ("BTC", "USD"), "ETHUSD": ("ETH", "USD")}
    _STATUS = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED"}

    def order_id(self) -> str:
        return str(100000 + len(self.orders))

    def serve(self) -> None:
        self.route("/api/v3/exchangeInfo", lambda r: _json({
            "timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "exchangeFilters": [],
            "symbols": [{"symbol": s, "status": "TRADING", "baseAsset": b, "baseAssetPrecision": 8,
                         "quoteAsset": q, "quotePrecision": 4, "quoteAssetPrecision": 4,
                         "baseCommissionPrecision": 8, "quoteCommissionPrecision": 2,
                         "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                         "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                         "allowTrailingStop": False, "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
                         "isMarginTradingAllowed": False,
                         "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
                                      "tickSize": "0.01"},
                                     {"filterType": "LOT_SIZE", "minQty": "0.00000100", "maxQty": "9000.00000000",
                                      "stepSize": "0.00000100"},
                                     {"filterType": "NOTIONAL", "minNotional": "1.00", "applyMinToMarket": True,
                                      "maxNotional": "9000000.00", "applyMaxToMarket": False,
                                      "avgPriceMins": 5}],
                         "permissions": ["SPOT"], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                         "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]}
                        for s, (b, q) in self.SYMBOLS.items()]}))
        self.route("/api/v3/order", self.create, "POST")
        self.route("/api/v3/order", lambda r: self.found(self._params(r)), "GET")
        self.route("/api/v3/order", self.cancel, "DELETE")
        self.route("/api/v3/openOrders", lambda r: _json(
            [self.binance_order(i) for i, o in self.orders.items() if o["status"] == "open"]))
        self.route("/api/v3/allOrders", lambda r: _json([self.binance_order(i) for i in self.orders]))
        self.route("/api/v3/myTrades", lambda r: _json([
            {"symbol": t["market"], "id": 28000 + n, "orderId": int(t["order_id"]), "orderListId": -1,
             "price": str(t["price"]), "qty": str(t["amount"]), "quoteQty": str(t["price"] * t["amount"]),
             "commission": str(t["fee"]), "commissionAsset": "USD", "time": int(t["time"] * 1000),
             "isBuyer": t["side"] == "buy", "isMaker": True, "isBestMatch": True}
            for n, t in enumerate(self.trades)]))
        self.route("/api/v3/account", lambda r: _json({
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "canTrade": True, "canWithdraw": False, "canDeposit": True, "updateTime": int(time.time() * 1000),
            "accountType": "SPOT", "permissions": ["SPOT"],
            "balances": [{"asset": c, "free": str(q), "locked": "0.00000000"} for c, q in self.balances.items()]}))

    @staticmethod
    def _params(request: Request) -> dict:
        return {**request.args.to_dict(), **_form(request)}

    def create(self, request: Request) -> Response:
        body = self._params(request)
        self.sent.append(body)
        order_id = self.new_order(client_order_id=body.get("newClientOrderId", ""), market=body["symbol"],
                                  side=body["side"].lower(), amount=float(body["quantity"]),
                                  price=float(body["price"]) if "price" in body else None,
                                  order_type=body["type"].lower())
        return _json({**self.binance_order(order_id), "transactTime": int(time.time() * 1000), "fills": []})

    def found(self, params: dict) -> Response:
        order_id = params.get("orderId") or self.by_client_id(params["origClientOrderId"])
        if order_id not in self.orders:
            return _json({"code": -2013, "msg": "Order does not exist."}, status=400)
        return _json(self.binance_order(order_id))

    def cancel(self, request: Request) -> Response:
        order_id = self._params(request)["orderId"]
        self.orders[order_id]["status"] = "canceled"
        return _json(self.binance_order(order_id))

    def binance_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {"symbol": o["market"], "orderId": int(order_id), "orderListId": -1,
                "clientOrderId": o["client_order_id"], "price": str(o["price"] or "0.00"),
                "origQty": str(o["amount"]), "executedQty": str(o["filled"]),
                "cummulativeQuoteQty": str(o["filled"] * o.get("average", 0)), "status": self._STATUS[o["status"]],
                "timeInForce": "GTC", "type": o["type"].upper(), "side": o["side"].upper(), "stopPrice": "0.00",
                "icebergQty": "0.00", "time": int(o["time"] * 1000), "updateTime": int(o["time"] * 1000),
                "isWorking": True, "workingTime": int(o["time"] * 1000), "origQuoteOrderQty": "0.00",
                "selfTradePreventionMode": "EXPIRE_MAKER"}


# --- Hyperliquid (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api) ------------------------


class FakeHyperliquid(FakeVenue):
    """Hyperliquid's two endpoints: ``POST /info`` (reads, by ``type``) and ``POST /exchange`` (signed actions).
    Perpetuals are named by coin and traded by asset index (the coin's place in ``meta.universe``)."""

    name = "hyperliquid"
    UNIVERSE = ("BTC", "ETH")
    _STATUS = {"open": "open", "filled": "filled", "canceled": "canceled"}

    def order_id(self) -> str:
        return str(5063830000 + len(self.orders))

    def serve(self) -> None:
        self.actions: list[dict] = []
        self.route("/info", self.info, "POST")
        self.route("/exchange", self.exchange, "POST")

    def info(self, request: Request) -> Response:
        body = request.get_json()
        kind = body["type"]
        if kind == "spotMeta":
            return _json({"universe": [], "tokens": [
                {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                 "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True, "evmContract": None,
                 "fullName": None}]})
        if kind == "metaAndAssetCtxs":
            return _json([{"universe": [{"szDecimals": 5 if c == "BTC" else 4, "name": c, "maxLeverage": 40,
                                         "marginTableId": 56} for c in self.UNIVERSE], "marginTables": []},
                          [{"funding": "0.0000125", "openInterest": "10000.0", "prevDayPx": "50000.0",
                            "dayNtlVlm": "1000000.0", "premium": "0.0", "oraclePx": "50000.0", "markPx": "50000.0",
                            "midPx": "50000.5", "impactPxs": ["50000.0", "50001.0"], "dayBaseVlm": "20.0"}
                           for _ in self.UNIVERSE]])
        if kind == "userAbstraction":
            return _json("default")
        if kind == "orderStatus":
            wanted = str(body["oid"])
            order_id = wanted if wanted in self.orders else next(
                (i for i, o in self.orders.items() if o["client_order_id"] == wanted), None)
            if order_id is None:
                return _json({"status": "unknownOid"})
            return _json({"status": "order", "order": self.with_status(order_id)})
        if kind in ("frontendOpenOrders", "openOrders"):
            return _json([self.hl_order(i) for i, o in self.orders.items() if o["status"] == "open"])
        if kind == "historicalOrders":
            return _json([self.with_status(i) for i in self.orders])
        if kind in ("userFills", "userFillsByTime"):
            return _json([{"coin": t["market"], "px": str(t["price"]), "sz": str(t["amount"]),
                           "side": "B" if t["side"] == "buy" else "A", "time": int(t["time"] * 1000),
                           "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0",
                           "hash": "0x" + "ab" * 32, "oid": int(t["order_id"]), "crossed": True,
                           "fee": str(t["fee"]), "tid": 900 + n, "feeToken": "USDC"}
                          for n, t in enumerate(self.trades)])
        if kind == "clearinghouseState":
            return _json({"assetPositions": [
                {"type": "oneWay", "position": {
                    "coin": coin, "szi": str(size), "leverage": {"type": "cross", "value": 20},
                    "entryPx": "50000.0", "positionValue": str(abs(size) * 50000), "unrealizedPnl": "0.0",
                    "returnOnEquity": "0.0", "liquidationPx": None, "marginUsed": str(abs(size) * 2500),
                    "maxLeverage": 40, "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}}
                for coin, size in self.positions.items()],
                "crossMarginSummary": {"accountValue": "10000.0", "totalNtlPos": "0.0", "totalRawUsd": "10000.0",
                                       "totalMarginUsed": "0.0"},
                "marginSummary": {"accountValue": "10000.0", "totalNtlPos": "0.0", "totalRawUsd": "10000.0",
                                  "totalMarginUsed": "0.0"},
                "crossMaintenanceMarginUsed": "0.0", "withdrawable": "10000.0", "time": int(time.time() * 1000)})
        return _json({"error": f"unknown info type {kind}"}, status=422)

    def exchange(self, request: Request) -> Response:
        body = request.get_json()
        action = body["action"]
        self.actions.append(action)
        if action["type"] == "order":
            statuses = []
            for wire in action["orders"]:
                self.sent.append(wire)
                order_id = self.new_order(client_order_id=wire.get("c", ""), market=self.UNIVERSE[wire["a"]],
                                          side="buy" if wire["b"] else "sell", amount=float(wire["s"]),
                                          price=float(wire["p"]),
                                          order_type="market" if wire["t"].get("limit", {}).get("tif") == "Ioc"
                                          else "limit")
                statuses.append({"resting": {"oid": int(order_id)}})
            return _json({"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}})
        if action["type"] == "cancel":
            for cancel in action["cancels"]:
                self.orders[str(cancel["o"])]["status"] = "canceled"
            return _json({"status": "ok", "response": {"type": "cancel", "data": {
                "statuses": ["success" for _ in action["cancels"]]}}})
        return _json({"status": "err", "response": f"unexpected action {action['type']}"})

    def sent_market(self, wire: dict) -> int:
        return wire["a"]

    def hl_order(self, order_id: str) -> dict:
        o = self.orders[order_id]
        return {"coin": o["market"], "side": "B" if o["side"] == "buy" else "A", "limitPx": str(o["price"]),
                "sz": str(o["amount"] - o["filled"]), "oid": int(order_id), "timestamp": int(o["time"] * 1000),
                "triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0", "children": [],
                "isPositionTpsl": False, "reduceOnly": False, "orderType": "Limit", "origSz": str(o["amount"]),
                "tif": "Gtc", "cloid": o["client_order_id"] or None}

    def with_status(self, order_id: str) -> dict:
        return {"order": self.hl_order(order_id), "status": self._STATUS[self.orders[order_id]["status"]],
                "statusTimestamp": int(time.time() * 1000)}
