"""Ironbeam REST v2: bearer token, orders under ``/order/{accountId}/...``, account data under
``/account/{accountId}/...``.

Shapes checked against Ironbeam's published OpenAPI document, IronbeamAPI 2.1 (https://docs.ironbeamapi.com/,
"Download OpenAPI specification"; read from the copy of that file at
https://github.com/jenialy/IronBeam-Broker-API-Doc, commit 04ed146, identical to its first upload):

- ``POST /auth`` (AuthorizationRequest ``username``, the API key, and ``password`` for enterprise users;
  AuthorizationResponse ``token``; 401 on refused credentials). The spec's own parts disagree on the key's
  spelling (schema ``apikey``, request example ``apiKey``, description ``ApiKey``); we send ``apiKey`` as in
  the request example.
- ``GET /info/trader`` (TraderInfo ``accounts`` list of account-id strings, ``isLive``, ``traderId``)
- ``POST /order/{accountId}/place`` (OrderRequest ``accountId``, ``exchSym``, ``side`` BUY/SELL, ``quantity``
  double, ``orderType`` "1" market / "2" limit / "3" stop, ``duration`` "0" day, ``limitPrice``, ``stopPrice``,
  ``waitForOrderId``; OrderBaseResponse ``orderId`` string, ``strategyId`` integer, only ``strategyId``
  required). The schema's ``required`` list names ``account`` while its property is ``accountId``; we send
  ``accountId``. The request has no client order id field, so a lost answer is resolved from the order list
  (see the adapter). ``GET /order/{accountId}/toorderid/{strategyId}`` exists to turn a strategy id into an
  order id; we do not call it (a strategy id alone is matched against the order list's ``strategyId``).
- ``PUT /order/{accountId}/update/{orderId}`` (OrderUpdateRequest ``orderId`` string, ``quantity`` int32,
  ``limitPrice``, ``stopPrice``), ``DELETE /order/{accountId}/cancel/{orderId}``, ``GET
  /order/{accountId}/{orderStatus}`` with ``ANY`` (OrdersResponse ``orders``: Order ``orderId``,
  ``strategyId``, ``accountId``, ``exchSym``, ``status`` (OrderStatusType), ``side``, ``quantity``,
  ``limitPrice``, ``stopPrice``, ``orderType``, ``duration``, ``fillQuantity``, ``fillPrice``, ``fillDate``,
  ``orderError`` {``errorCode``, ``errorText``})
- ``GET /order/{accountId}/fills`` (OrdersFillsResponse ``fills``: OrderFill ``orderId``, ``strategyId``,
  ``accountId``, ``exchSym``, ``status``, ``side``, ``quantity``, ``price``, ``fillQuantity``,
  ``fillTotalQuantity``, ``fillPrice``, ``avgFillPrice``, ``fillDate``, ``timeOrderEvent``, ``orderUpdateId``
  like ``10336761658263818775-134``). OrderFill has no fee or commission field: Ironbeam's fees are not in
  this API, so fills are recorded with fee unknown.
- ``GET /account/{accountId}/positions`` (``accountId``, ``positions``: Position ``accountId``,
  ``currencyCode``, ``exchSym``, ``positionId``, ``quantity``, ``price``, ``dateOpened``, ``side`` LONG/SHORT,
  ``unrealizedPL``), ``GET /account/{accountId}/balance?balanceType=CURRENT_OPEN`` (``balances``)
- symbols: ``exchSym`` like ``XCME:ES.U16`` (exchange, root, month code, two-digit year), as in every example
  of the spec; its Symbol pattern (``^[A-Z0-9]{1,10}:[A-Z0-9]{1,10}$``) omits the dot its own examples carry.
- every answer carries ``status`` (OK, ERROR, WARNING, INFO, FATAL, UNKNOWN) and ``message``; errors add
  ``error``; 400/401/403/406/429 answer that Error shape; HTTP 429 is Too Many Requests.
"""

from __future__ import annotations

from decimal import Decimal

from controlplane.errors import ErrorCode
from integrations.permissions import UNKNOWN
from integrations.providers.base import IntegrationError
from integrations.providers.futures_broker import EnvironmentBroker

ORDER_TYPES = {"market": "1", "limit": "2", "stop": "3"}
SIDES = {"buy": "BUY", "sell": "SELL"}
FAILED_STATUSES = {"ERROR", "FATAL"}


class IronbeamClient(EnvironmentBroker):
    """Ironbeam REST v2 (``POST /auth`` with username and API key, then bearer-token calls)."""

    provider = "ironbeam"
    environment_field = "IRONBEAM_ENVIRONMENT"

    def authenticate(self) -> str:
        payload = {"username": self.credential("IRONBEAM_USERNAME"), "apiKey": self.credential("IRONBEAM_API_KEY")}
        if self.credentials.get("IRONBEAM_PASSWORD"):
            payload["password"] = self.credentials["IRONBEAM_PASSWORD"]
        body = self.json(self.request("POST", "/auth", safe=True, json=payload))
        if body.get("status") not in (None, "OK"):
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED, "Ironbeam refused the credentials.", provider=self.provider
            )
        token = body.get("token")
        if not isinstance(token, str) or not token:
            self.malformed("no token")
        return token

    def raise_for_status(self, response) -> None:
        """4xx answers keep Ironbeam's ``error`` text and the status, so order calls can name the reason."""
        status = response.status_code
        if 400 <= status < 500 and status not in (401, 403, 429):
            reason = _reason(response)
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"Ironbeam refused the request (HTTP {status}): {reason}",
                provider=self.provider,
                sent=True,
                details={"provider": self.provider, "http_status": status, "reason": reason},
            )
        super().raise_for_status(response)

    def call(self, method: str, path: str, *, safe: bool, order: bool = False, **kwargs) -> dict:
        """A bearer call whose body must say ``status`` OK (or a non-failing status). For order calls a refusal
        (HTTP 400/404/406 or ``status`` ERROR) is ORDER_REJECTED with Ironbeam's words."""
        try:
            body = self.json(self.authorized_request(method, path, safe=safe, **kwargs))
        except IntegrationError as exc:
            if order and exc.details and exc.details.get("http_status"):
                raise IntegrationError(
                    ErrorCode.ORDER_REJECTED,
                    exc.details["reason"],
                    provider=self.provider,
                    sent=True,
                    details={"provider": self.provider, "reason": exc.details["reason"]},
                ) from exc
            if exc.code == ErrorCode.INTEGRATION_AUTH_FAILED:
                self._token = None  # the next call logs in again
            raise
        if body.get("status") in FAILED_STATUSES:
            reason = str(body.get("error") or body.get("message") or body["status"])
            code = ErrorCode.ORDER_REJECTED if order else ErrorCode.INTEGRATION_BAD_RESPONSE
            raise IntegrationError(
                code, reason, provider=self.provider, sent=True, details={"provider": self.provider, "reason": reason}
            )
        return body

    # --- verify: the account must be the configured environment ------------------------------------------

    def verify(self) -> dict:
        return self.run("verify", self._trader_summary)

    def trader_info(self) -> dict:
        return self.run("info.trader", self._trader_info)

    def _trader_info(self) -> dict:
        body = self.call("GET", "/info/trader", safe=True)
        if not isinstance(body.get("accounts"), list) or not isinstance(body.get("isLive"), bool):
            self.malformed("no accounts list or isLive flag")
        return body

    def _trader_summary(self) -> dict:
        """The accounts, and ``permissions: unknown``: Ironbeam's API 2.1 reports nothing about what a key may do
        (TraderInfo has ``accounts``, ``isLive``, ``traderId``; ``GET /info/user`` names, e-mails, groups and
        ``accountCategory``), and has no withdrawal or transfer operation to probe, so only the owner can say
        whether this login can move money; LIVE waits for an owner's confirmation."""
        info = self._trader_info()
        self._check_environment(info)
        return {"accounts": len(info["accounts"]), "is_live": info["isLive"], "permissions": UNKNOWN}

    def _check_environment(self, info: dict) -> None:
        configured_live = self.credentials.get(self.environment_field) == "live"
        if info["isLive"] != configured_live:
            actual, configured = ("live", "demo") if info["isLive"] else ("demo", "live")
            raise IntegrationError(
                ErrorCode.INTEGRATION_ENVIRONMENT_MISMATCH,
                f"Ironbeam reports a {actual} account but IRONBEAM_ENVIRONMENT is {configured}.",
                provider=self.provider,
                sent=True,
            )

    def account_id(self) -> str:
        """``IRONBEAM_ACCOUNT_ID`` if set (and the trader's), else the trader's only account; checked against
        the configured environment first, so a demo account is never traded as live or the reverse."""

        def resolve() -> str:
            info = self._trader_info()
            self._check_environment(info)
            accounts = [str(a) for a in info["accounts"]]
            wanted = self.credentials.get("IRONBEAM_ACCOUNT_ID", "").strip()
            chosen = [a for a in accounts if a == wanted] if wanted else accounts
            if len(chosen) != 1:
                raise IntegrationError(
                    ErrorCode.INTEGRATION_KEY_MISSING,
                    "IRONBEAM_ACCOUNT_ID is not one of the trader's accounts."
                    if wanted
                    else "Set IRONBEAM_ACCOUNT_ID: the trader has several accounts.",
                    provider=self.provider,
                    sent=False,
                    details={"provider": self.provider, "missing_env_vars": ["IRONBEAM_ACCOUNT_ID"]},
                )
            return chosen[0]

        return self.run("account.resolve", resolve)

    # --- orders -------------------------------------------------------------------------------------------

    def place_order(
        self,
        *,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Decimal,
        order_type: str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> dict:
        """``POST /order/{accountId}/place``, never retried; returns ``{"orderId", "strategyId"}``."""
        body = {
            "accountId": account_id,
            "exchSym": symbol,
            "side": SIDES[side],
            "quantity": float(quantity),
            "orderType": ORDER_TYPES[order_type],
            "duration": "0",
            "waitForOrderId": True,
        }
        if limit_price is not None:
            body["limitPrice"] = float(limit_price)
        if stop_price is not None:
            body["stopPrice"] = float(stop_price)

        def place() -> dict:
            result = self.call("POST", f"/order/{account_id}/place", safe=False, order=True, json=body)
            if not result.get("orderId") and result.get("strategyId") is None:
                self.malformed("place answered without orderId or strategyId")
            return {"orderId": str(result.get("orderId") or ""), "strategyId": result.get("strategyId")}

        return self.run("order.place", place)

    def update_order(
        self,
        *,
        account_id: str,
        order_id: str,
        quantity: Decimal,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> list[dict]:
        body = {"orderId": order_id, "quantity": int(quantity)}
        if limit_price is not None:
            body["limitPrice"] = float(limit_price)
        if stop_price is not None:
            body["stopPrice"] = float(stop_price)
        return self.run(
            "order.update",
            lambda: self._orders_of(
                self.call("PUT", f"/order/{account_id}/update/{order_id}", safe=False, order=True, json=body)
            ),
        )

    def cancel_order(self, *, account_id: str, order_id: str) -> list[dict]:
        return self.run(
            "order.cancel",
            lambda: self._orders_of(
                self.call("DELETE", f"/order/{account_id}/cancel/{order_id}", safe=False, order=True)
            ),
        )

    def orders(self, *, account_id: str, status: str = "ANY") -> list[dict]:
        return self.run(
            "order.list", lambda: self._orders_of(self.call("GET", f"/order/{account_id}/{status}", safe=True))
        )

    def fills(self, *, account_id: str) -> list[dict]:
        def fills() -> list[dict]:
            rows = self.call("GET", f"/order/{account_id}/fills", safe=True).get("fills")
            if not isinstance(rows, list):
                self.malformed("no fills list")
            return rows

        return self.run("order.fills", fills)

    def positions(self, *, account_id: str) -> list[dict]:
        def positions() -> list[dict]:
            rows = self.call("GET", f"/account/{account_id}/positions", safe=True).get("positions")
            if not isinstance(rows, list):
                self.malformed("no positions list")
            return rows

        return self.run("account.positions", positions)

    def balance(self, *, account_id: str) -> list[dict]:
        def balance() -> list[dict]:
            rows = self.call(
                "GET", f"/account/{account_id}/balance", safe=True, params={"balanceType": "CURRENT_OPEN"}
            ).get("balances")
            if not isinstance(rows, list):
                self.malformed("no balances list")
            return rows

        return self.run("account.balance", balance)

    def _orders_of(self, body: dict) -> list[dict]:
        rows = body.get("orders")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            self.malformed("no orders list")
        return rows


def _reason(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body.get("status") or body)[:500]
    return str(body)[:200]
