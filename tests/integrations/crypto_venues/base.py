"""The shared part of the fake crypto venues: keys, the reference mapping, bots and books, one account."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs

from werkzeug import Request, Response

from execution.models import Instrument
from integrations import services

KEYS = {
    "kraken": {"KRAKEN_API_KEY": "kr-abcdefghijkl", "KRAKEN_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0"},
    "coinbase": {"COINBASE_API_KEY": "cb-abcdefghijkl", "COINBASE_API_SECRET": "cb-secret-abcdefghijkl"},
    "binanceus": {"BINANCEUS_API_KEY": "bn-abcdefghijkl", "BINANCEUS_API_SECRET": "bn-secret-abcdefghijkl"},
    "hyperliquid": {"HYPERLIQUID_WALLET_ADDRESS": "0x" + "1" * 40, "HYPERLIQUID_PRIVATE_KEY": "0x" + "2" * 64},
}

# What each venue's market list yields for our BTC-USD (what map_venue_symbols stores).
BTC_USD = {
    "kraken": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
    "coinbase": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
    "binanceus": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
    "hyperliquid": {"symbol": "BTC/USDC:USDC", "base": "BTC", "quote": "USDC", "type": "swap"},
}


def btc_usd(*venues: str) -> Instrument:
    """The shipped BTC-USD instrument, mapped at ``venues`` (none: unmapped, as a fresh install has it)."""
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {venue: BTC_USD[venue] for venue in venues}
    instrument.save(update_fields=["venue_symbols"])
    return instrument


def set_keys(venue: str, owner) -> None:
    services.credentials_set(provider=venue, values=KEYS[venue], actor=owner)


def live_crypto_bot(*, tenant, owner, venue: str, name: str = "live-btc", instruments=("BTC-USD",)):
    """A LIVE bot on ``venue`` at autonomy tier T3, with its keys set (not yet verified)."""
    from bots import services as bot_services
    from bots.models import Bot, Stage
    from controlplane import tenancy

    with tenancy.tenant_context(tenant.id):
        set_keys(venue, owner)
        bot = bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=list(instruments),
            venue=venue,
            data_source="imported",
        )
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.LIVE, autonomy_tier=Bot.AutonomyTier.T3)
        bot.refresh_from_db()
    return bot


def booked(bot, symbol: str, quantity, *, venue: str | None = None) -> None:
    """What the OMS leaves after fills of ``quantity`` at the bot's venue: the bot's position and the tenant's
    inventory there (call inside the tenant's context)."""
    from decimal import Decimal

    from controlplane.books import book_for_venue
    from execution.models import StrategyPosition, VenueInventory

    venue = venue or bot.venue
    instrument = Instrument.objects.get(symbol=symbol)
    StrategyPosition.objects.update_or_create(
        tenant_id=bot.tenant_id,
        bot=bot,
        instrument=instrument,
        book=book_for_venue(venue),
        defaults={"quantity": Decimal(str(quantity)), "average_price": Decimal("50000")},
    )
    row, _ = VenueInventory.objects.get_or_create(
        tenant_id=bot.tenant_id, book=book_for_venue(venue), venue=venue, asset=symbol
    )
    row.quantity += Decimal(str(quantity))
    row.save(update_fields=["quantity", "updated_at"])


def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def form_of(request: Request) -> dict:
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

    def new_order(
        self, *, client_order_id: str, market: str, side: str, amount: float, price: float | None, order_type: str
    ) -> str:
        order_id = self.order_id()
        self.orders[order_id] = {
            "client_order_id": client_order_id,
            "market": market,
            "side": side,
            "amount": amount,
            "price": price,
            "type": order_type,
            "status": "open",
            "filled": 0.0,
            "time": time.time(),
        }
        return order_id

    def order_id(self) -> str:
        return str(uuid.uuid4())

    def fill(self, order_id: str, *, price: float, fee: float | None = 0.5) -> None:
        """The whole order executes at ``price``."""
        order = self.orders[order_id]
        order.update(status="filled", filled=order["amount"], average=price)
        self.trades.append(
            {
                "id": f"T{len(self.trades) + 1}",
                "order_id": order_id,
                "amount": order["amount"],
                "price": price,
                "fee": fee,
                "time": time.time(),
                "side": order["side"],
                "market": order["market"],
            }
        )

    def by_client_id(self, client_order_id: str) -> str:
        return next(i for i, o in self.orders.items() if o["client_order_id"] == client_order_id)

    def serve(self) -> None:
        raise NotImplementedError
