"""The shared part of the fake crypto venues (``<venue>/fake.py``): one account at a venue, served on a
pytest-httpserver instance passed in, in the venue's documented REST shapes (the shapes ccxt's own parsers quote
from the venues' API references), so tests run the real ccxt code and our real client against it.

Each fake keeps what a venue keeps: its market list, the orders sent to it (with the client order id they
carried), the fills of those orders and the account's balances or positions. A test fills or cancels an order
the way the venue would (``fill``), then reads it back through the adapter. Production never imports these; they
import nothing of pytest's at import time (werkzeug, which pytest-httpserver brings, only when answering).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from werkzeug import Request, Response


def json_response(body, status: int = 200) -> Response:
    from werkzeug import Response

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
        # Public market data: the top of book per market (ccxt's unified symbol) and whether the venue answers it.
        self.books: dict[str, tuple[float, float, float, float]] = {}
        self.books_down = False
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

    def set_book(self, symbol: str, *, bid: float, bid_size: float, ask: float, ask_size: float) -> None:
        """The market's best bid and ask as the venue will answer them (a second level behind each, worse)."""
        self.books[symbol] = (bid, bid_size, ask, ask_size)

    def levels(self, market_id: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]] | None:
        """Bids and asks (best first) of the market the venue calls ``market_id``; None when it has no book."""
        symbol = next((s for s in self.books if self.market_id(s) == market_id), None)
        if symbol is None:
            return None
        bid, bid_size, ask, ask_size = self.books[symbol]
        return [(bid, bid_size), (bid - 1, bid_size * 2)], [(ask, ask_size), (ask + 1, ask_size * 2)]

    def market_id(self, symbol: str) -> str:
        """The venue's own id of a ccxt unified symbol."""
        raise NotImplementedError

    def outage(self) -> Response:
        return json_response({"message": "service unavailable"}, status=503)

    def by_client_id(self, client_order_id: str) -> str:
        return next(i for i, o in self.orders.items() if o["client_order_id"] == client_order_id)

    def serve(self) -> None:
        raise NotImplementedError
