"""Tradovate REST v1: one shared session per credential, and the order API.

Shapes checked against Tradovate's public API documentation (https://partner.tradovate.com, pages below under
https://partner.tradovate.com/api/rest-api-endpoints/ unless absolute) and its example code
(https://github.com/tradovate/example-api-js):

- access token request: authentication/access-token-request and
  https://partner.tradovate.com/overview/quick-setup/5-minute-quickstart (body ``name``, ``password``, ``appId``,
  ``appVersion``, ``cid`` a number, the API key's id, ``sec``; optional ``deviceId``; answer ``accessToken``,
  ``expirationTime``, ``userId``; tokens last 80 minutes; ``errorText`` on a refused login)
- renewal: authentication/renew-access-token (``GET /auth/renewaccesstoken`` with the current token, before
  ``expirationTime``; extends the session without opening a new one; Tradovate's example renews 15 min early)
- business errors as HTTP 200: https://partner.tradovate.com/overview/core-concepts/error-handling
  (``errorText``, ``violations`` with ``constraint``/``value``/``description``)
- penalty tickets: https://partner.tradovate.com/overview/core-concepts/penalty-tickets (HTTP 200 with
  ``p-ticket``, ``p-time`` seconds, ``p-captcha``); the login is resent with ``p-ticket`` in the JSON body, as
  example-api-js does (tutorial/Access); rate limits: https://partner.tradovate.com/overview/core-concepts/rate-limits
  (HTTP 429 with an empty body and no ticket: wait an hour)
- orders: orders/place-order (``accountSpec``, ``accountId``, ``action`` Buy/Sell, ``symbol``, ``orderQty``,
  ``orderType``, ``price``, ``stopPrice``, ``isAutomated``; answer ``{"orderId"}``), orders/cancel-order,
  orders/modify-order, orders/order-list, orders/order-item, orders/command-list (Command: ``orderId``,
  ``commandType`` New/Modify/Cancel, ``commandStatus``, optional ``clOrdId``), orders/fill-list (Fill: ``id``,
  ``orderId``, ``contractId``, ``timestamp``, ``tradeDate``, ``action``, ``qty``, ``price``, ``active``,
  ``finallyPaired``), orders/fill-dependents (``/fill/deps?masterid=``), orders/fill-fee-list (FillFee: ``id`` =
  the fill's id, ``commission``, ``clearingFee``, ``exchangeFee``, ``nfaFee``, ``brokerageFee``, ``ipFee`` (IP/TT
  fee), ``orderRoutingFee``, each nullable and each with its ``...CurrencyId``)
- positions: positions/position-list (``accountId``, ``contractId``, ``netPos``, ``netPrice``); contracts:
  contract-library/contract-item (``name``); accounts: accounts/account-list (``id``, ``name``, ``active``)

Not confirmed from those pages (the stored copies we could read show the examples, not every type): the
``clOrdId`` field of the place-order request (it is a documented field of the Command it creates), the
``failureReason``/``failureText`` fields of a refused placeorder, and the ``commandId`` answer of cancelorder and
modifyorder. These follow Tradovate's PlaceOrderResult/CommandResult as used in its example-api repositories;
a refusal is detected by any of ``errorText``, ``violations`` or a ``failureReason`` other than ``Success``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis

from controlplane.errors import ErrorCode
from integrations.permissions import UNKNOWN
from integrations.providers.base import IntegrationError
from integrations.providers.futures_broker import EnvironmentBroker
from integrations.providers.tradovate.session_tokens import SessionToken, SharedTokenStore, TokenStoreUnavailable

# Tradovate's own example renews when fewer than 15 minutes are left.
RENEW_BEFORE = timedelta(minutes=15)
# A login penalty shorter than this is waited out once (then the login is resent with the ticket).
PENALTY_WAIT_MAX_SECONDS = 10.0
# Tradovate's HTTP 429 locks the user out for an hour and sends no Retry-After.
HTTP_429_WAIT_SECONDS = 3600.0

ORDER_TYPES = {"market": "Market", "limit": "Limit", "stop": "Stop"}
ACTIONS = {"buy": "Buy", "sell": "Sell"}


class TradovateClient(EnvironmentBroker):
    """Tradovate REST v1. Every authorized call uses the one session token shared through Redis."""

    provider = "tradovate"
    environment_field = "TRADOVATE_ENVIRONMENT"

    # --- session ------------------------------------------------------------------------------------------

    def token_store(self) -> SharedTokenStore:
        identity = ":".join(
            [
                self.base_url,
                self.credentials.get("TRADOVATE_USERNAME", ""),
                self.credentials.get("TRADOVATE_CID", ""),
                self.credentials.get("TRADOVATE_APP_ID", ""),
            ]
        )
        return SharedTokenStore(provider=self.provider, tenant_id=self.tenant_id, identity=identity)

    def _login_payload(self) -> dict:
        payload = {
            "name": self.credential("TRADOVATE_USERNAME"),
            "password": self.credential("TRADOVATE_PASSWORD"),
            "appId": self.credential("TRADOVATE_APP_ID"),
            "appVersion": self.credential("TRADOVATE_APP_VERSION"),
            "cid": self._cid(),
            "sec": self.credential("TRADOVATE_SECRET"),
        }
        if self.credentials.get("TRADOVATE_DEVICE_ID"):
            payload["deviceId"] = self.credentials["TRADOVATE_DEVICE_ID"]
        return payload

    def _cid(self) -> int:
        """Tradovate documents ``cid`` as the API key's numeric id; anything else is a configuration mistake."""
        value = self.credential("TRADOVATE_CID").strip()
        if not value.isdigit():
            raise IntegrationError(
                ErrorCode.INTEGRATION_KEY_MISSING,
                "TRADOVATE_CID must be the API key's numeric id.",
                provider=self.provider,
                sent=False,
                details={"provider": self.provider, "missing_env_vars": ["TRADOVATE_CID"]},
            )
        return int(value)

    def _token_from(self, body: dict) -> SessionToken:
        self.inspect(body, failure=ErrorCode.INTEGRATION_AUTH_FAILED)
        token, expires = body.get("accessToken"), body.get("expirationTime")
        if not isinstance(token, str) or not token:
            self.malformed("no accessToken")
        try:
            expires_at = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        except ValueError:
            self.malformed("no valid expirationTime")
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return SessionToken(token, expires_at)

    def login(self) -> SessionToken:
        """A new session (``POST /auth/accesstokenrequest``); a short login penalty is waited out once."""
        payload = self._login_payload()
        # Requesting a token has no side effect beyond issuing one, so it is safe to repeat.
        body = self.json(self.request("POST", "/auth/accesstokenrequest", safe=True, json=payload))
        ticket, wait = body.get("p-ticket"), _seconds(body.get("p-time"))
        if ticket and not body.get("p-captcha") and wait is not None and wait <= PENALTY_WAIT_MAX_SECONDS:
            time.sleep(wait)
            body = self.json(
                self.request("POST", "/auth/accesstokenrequest", safe=True, json={**payload, "p-ticket": ticket})
            )
        return self._token_from(body)

    def renew(self, current: SessionToken) -> SessionToken:
        """Extend the session (``GET /auth/renewaccesstoken``) instead of opening another one."""
        response = self.request(
            "GET", "/auth/renewaccesstoken", safe=True, headers={"Authorization": f"Bearer {current.value}"}
        )
        return self._token_from(self.json(response))

    def session_token(self) -> str:
        """The shared token: reused while fresh, renewed within RENEW_BEFORE of expiry, else a new login."""
        store = self.token_store()
        try:
            current = store.get()
            if current is not None and current.seconds_left() > RENEW_BEFORE.total_seconds():
                return current.value
            with store.lock(timeout=max(self.timeout * 3, 5)):
                current = store.get()  # another worker may have renewed while we waited
                if current is not None and current.seconds_left() > RENEW_BEFORE.total_seconds():
                    return current.value
                fresh = None
                if current is not None and current.seconds_left() > 0:
                    try:
                        fresh = self.renew(current)
                    except IntegrationError as exc:
                        if exc.code != ErrorCode.INTEGRATION_AUTH_FAILED:
                            raise
                fresh = fresh or self.login()
                store.put(fresh)
                return fresh.value
        except (TokenStoreUnavailable, redis.RedisError) as exc:
            # Logging in per process would close other workers' sessions: refuse instead.
            raise IntegrationError(
                ErrorCode.SERVICE_UNAVAILABLE,
                "The shared Tradovate session cannot be read (Redis unavailable).",
                provider=self.provider,
                sent=False,
            ) from exc

    def authenticate(self) -> str:
        return self.session_token()

    def authorized_request(self, method: str, path: str, *, safe: bool, **kwargs):
        """A bearer call whose 200 body is inspected; a refused token is dropped and the call made once more
        (a 401 means Tradovate did not act on the request, so this is safe even for orders)."""
        token = self.session_token()
        headers = kwargs.pop("headers", {})
        try:
            return self.request(
                method, path, safe=safe, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs
            )
        except IntegrationError as exc:
            if exc.code != ErrorCode.INTEGRATION_AUTH_FAILED:
                raise
            self.token_store().discard(token)
        token = self.session_token()
        return self.request(method, path, safe=safe, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs)

    def call(
        self,
        method: str,
        path: str,
        *,
        safe: bool,
        expect: type = dict,
        failure: ErrorCode = ErrorCode.INTEGRATION_BAD_RESPONSE,
        **kwargs,
    ):
        body = self.json(self.authorized_request(method, path, safe=safe, **kwargs), expect=expect)
        if isinstance(body, dict):
            self.inspect(body, failure=failure)
        return body

    # --- every HTTP 200 is inspected ----------------------------------------------------------------------

    def raise_for_status(self, response) -> None:
        if response.status_code == 429:
            raise IntegrationError(
                ErrorCode.INTEGRATION_RATE_LIMITED,
                "Tradovate is rate limiting this user (HTTP 429).",
                provider=self.provider,
                sent=True,
                retry_after=self.retry_after_of(response) or HTTP_429_WAIT_SECONDS,
            )
        super().raise_for_status(response)

    def inspect(self, body: dict, *, failure: ErrorCode) -> None:
        """Penalty tickets, ``errorText``, ``violations`` and ``failureReason`` in a 200 body become errors."""
        if body.get("p-ticket"):
            wait = HTTP_429_WAIT_SECONDS if body.get("p-captcha") else _seconds(body.get("p-time"))
            raise IntegrationError(
                ErrorCode.INTEGRATION_RATE_LIMITED,
                f"Tradovate issued a penalty ticket: wait {wait}s before this call again.",
                provider=self.provider,
                sent=True,
                retry_after=wait,
            )
        reasons = []
        if body.get("errorText"):
            reasons.append(str(body["errorText"]))
        for violation in body.get("violations") or []:
            if isinstance(violation, dict):
                reasons.append(str(violation.get("description") or violation.get("constraint") or violation))
        failure_reason = body.get("failureReason")
        if failure_reason and failure_reason != "Success":
            reasons.append(f"{failure_reason}: {body.get('failureText') or ''}".rstrip(": "))
        if reasons:
            message = "; ".join(reasons)
            if failure == ErrorCode.INTEGRATION_AUTH_FAILED:
                message = "Tradovate refused the credentials."  # its errorText may echo the user name
            raise IntegrationError(
                failure,
                message,
                provider=self.provider,
                sent=True,
                details={"provider": self.provider, "reason": message},
            )

    # --- accounts -----------------------------------------------------------------------------------------

    def verify(self) -> dict:
        return self.run("verify", self._accounts_summary)

    def list_accounts(self) -> list[dict]:
        return self.run("account.list", self._accounts)

    def _accounts(self) -> list[dict]:
        accounts = self.call("GET", "/account/list", safe=True, expect=list)
        if not all(isinstance(a, dict) and "id" in a for a in accounts):
            self.malformed("accounts without ids")
        return accounts

    def _accounts_summary(self) -> dict:
        """The accounts, and ``permissions: unknown``. Tradovate scopes an API key per domain (Orders, Positions,
        Account Information, ...; Denied, Read only or Full Access:
        https://tradovate.zendesk.com/hc/en-us/articles/4403105764371-How-Do-I-Change-My-API-Key-Permissions), but
        no endpoint reports a key's scopes: the access-token answer carries the token, its expiry and ``userId``,
        and account/list only ``id``, ``name``, ``accountType``, ``active``. No scope withdraws money through the
        API, yet the login is the user's own name and password, which can do so at Tradovate; only the owner can
        say what this login may do, so LIVE waits for an owner's confirmation."""
        return {"accounts": len(self._accounts()), "permissions": UNKNOWN}

    def trading_account(self) -> dict:
        """The account orders go to: ``TRADOVATE_ACCOUNT_ID`` if set, else the only active account."""
        return self.run("account.resolve", self._trading_account)

    def _trading_account(self) -> dict:
        accounts = [a for a in self._accounts() if a.get("active", True)]
        wanted = self.credentials.get("TRADOVATE_ACCOUNT_ID", "").strip()
        chosen = [a for a in accounts if str(a["id"]) == wanted or a.get("name") == wanted] if wanted else accounts
        if len(chosen) != 1:
            raise IntegrationError(
                ErrorCode.INTEGRATION_KEY_MISSING,
                "Set TRADOVATE_ACCOUNT_ID to one of the user's active accounts."
                if not wanted
                else "TRADOVATE_ACCOUNT_ID is not among the user's active Tradovate accounts.",
                provider=self.provider,
                sent=False,
                details={"provider": self.provider, "missing_env_vars": ["TRADOVATE_ACCOUNT_ID"]},
            )
        return chosen[0]

    # --- orders -------------------------------------------------------------------------------------------

    def place_order(
        self,
        *,
        account: dict,
        symbol: str,
        side: str,
        quantity: Decimal,
        order_type: str,
        client_order_id: str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> int:
        """``POST /order/placeorder``, never retried; returns Tradovate's order id."""
        body = {
            "accountSpec": account.get("name") or self.credential("TRADOVATE_USERNAME"),
            "accountId": account["id"],
            "clOrdId": client_order_id,
            "action": ACTIONS[side],
            "symbol": symbol,
            "orderQty": _whole(quantity),
            "orderType": ORDER_TYPES[order_type],
            "isAutomated": True,
        }
        if limit_price is not None:
            body["price"] = float(limit_price)
        if stop_price is not None:
            body["stopPrice"] = float(stop_price)

        def place() -> int:
            result = self.call("POST", "/order/placeorder", safe=False, json=body, failure=ErrorCode.ORDER_REJECTED)
            order_id = result.get("orderId")
            if not isinstance(order_id, int):
                self.malformed("placeorder answered without an orderId")
            return order_id

        return self.run("order.place", place)

    def modify_order(
        self,
        *,
        order_id: int,
        quantity: Decimal,
        order_type: str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> int:
        body = {
            "orderId": order_id,
            "orderQty": _whole(quantity),
            "orderType": ORDER_TYPES[order_type],
            "isAutomated": True,
        }
        if limit_price is not None:
            body["price"] = float(limit_price)
        if stop_price is not None:
            body["stopPrice"] = float(stop_price)
        return self.run("order.modify", lambda: self._command("/order/modifyorder", body))

    def cancel_order(self, *, order_id: int) -> int:
        body = {"orderId": order_id, "isAutomated": True}
        return self.run("order.cancel", lambda: self._command("/order/cancelorder", body))

    def _command(self, path: str, body: dict) -> int:
        result = self.call("POST", path, safe=False, json=body, failure=ErrorCode.ORDER_REJECTED)
        command_id = result.get("commandId")
        if not isinstance(command_id, int):
            self.malformed(f"{path} answered without a commandId")
        return command_id

    def order(self, order_id: int) -> dict:
        return self.run("order.item", lambda: self.call("GET", "/order/item", safe=True, params={"id": order_id}))

    def orders(self) -> list[dict]:
        return self.run("order.list", lambda: self.call("GET", "/order/list", safe=True, expect=list))

    def commands(self) -> list[dict]:
        return self.run("command.list", lambda: self.call("GET", "/command/list", safe=True, expect=list))

    def order_id_for_client_order_id(self, client_order_id: str) -> int | None:
        """The order our ``clOrdId`` created, from the New command that carried it; None if it never arrived."""
        ids = {
            c.get("orderId")
            for c in self.commands()
            if isinstance(c, dict) and c.get("clOrdId") == client_order_id and c.get("commandType") == "New"
        }
        if len(ids) > 1:
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"Several Tradovate orders carry clOrdId {client_order_id}.",
                provider=self.provider,
            )
        return next(iter(ids), None)

    def fills(self, *, order_id: int | None = None) -> list[dict]:
        if order_id is None:
            return self.run("fill.list", lambda: self.call("GET", "/fill/list", safe=True, expect=list))
        return self.run(
            "fill.deps", lambda: self.call("GET", "/fill/deps", safe=True, expect=list, params={"masterid": order_id})
        )

    def fill_fees(self) -> list[dict]:
        return self.run("fillFee.list", lambda: self.call("GET", "/fillFee/list", safe=True, expect=list))

    def positions(self) -> list[dict]:
        return self.run("position.list", lambda: self.call("GET", "/position/list", safe=True, expect=list))

    def contract_name(self, contract_id: int) -> str:
        def item() -> str:
            name = self.call("GET", "/contract/item", safe=True, params={"id": contract_id}).get("name")
            if not isinstance(name, str) or not name:
                self.malformed("contract without a name")
            return name

        return self.run("contract.item", item)


def _seconds(value) -> float | None:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return None


def _whole(quantity: Decimal) -> int:
    """Futures trade whole contracts; a fractional quantity is a bug upstream, never rounded here."""
    if quantity != quantity.to_integral_value() or quantity <= 0:
        raise ValueError(f"Tradovate orders need a positive whole number of contracts, got {quantity}")
    return int(quantity)
