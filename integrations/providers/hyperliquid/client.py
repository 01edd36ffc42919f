"""Hyperliquid perpetuals through ccxt: who signs decides what the key may do."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import ccxt

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError
from integrations.providers.ccxt_client import CcxtVenueClient


class _Hyperliquid(ccxt.hyperliquid):
    """ccxt's Hyperliquid, minus what it signs on its own: on the first private call ccxt approves a builder fee
    for ccxt's own address (``approveBuilderFee``, up to 0.01% of every order) and sets a referrer; neither is ours
    to give away from the owner's wallet. Orders then carry no builder."""

    def handle_builder_fee_approval(self) -> bool:
        return True


class HyperliquidClient(CcxtVenueClient):
    """Hyperliquid. Who signs decides what the key may do: the account's own private key can withdraw and
    transfer (``withdraw3``, ``usdSend``, ``usdClassTransfer`` are user-signed actions of the account,
    https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/exchange-endpoint), while an API (agent)
    wallet approved by the account only signs trading actions for it and holds nothing
    (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/nonces-and-api-wallets). Verify signs a
    ``noop`` (proves the key signs), derives the signer's address from the key, and asks ``POST /info``
    ``{"type": "userRole", "user": <signer>}``, which answers ``{"role": "agent", "data": {"user": <master>}}``
    for an API wallet (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint#query-a-users-role).
    The account's own key is too powerful; an agent of another account is refused."""

    provider = "hyperliquid"
    exchange_id = "hyperliquid"
    config_fields = {"walletAddress": "HYPERLIQUID_WALLET_ADDRESS", "privateKey": "HYPERLIQUID_PRIVATE_KEY"}
    sandbox_field = "HYPERLIQUID_ENVIRONMENT"
    sandbox_value = "testnet"
    market_order_needs_price = True
    # Perpetuals only (our Hyperliquid instruments are perps); no referrer, no builder fee (see _Hyperliquid).
    exchange_options = {
        "fetchMarkets": {"types": ["swap"]},
        "refSet": True,
        "builderFee": False,
        "approvedBuilderFee": False,
    }

    def exchange_class(self) -> type[ccxt.Exchange]:
        return _Hyperliquid

    def client_order_id(self, ours: str) -> str:
        return "0x" + uuid.uuid5(uuid.NAMESPACE_URL, f"controlplane:{ours}").hex

    trade_only_key_fix = (
        "At app.hyperliquid.xyz/API, generate an API wallet, authorize it for this account, and "
        "enter its private key as HYPERLIQUID_PRIVATE_KEY (HYPERLIQUID_WALLET_ADDRESS stays the "
        "account's address)."
    )

    def verify(self) -> dict:
        return self.run("verify", lambda: {**self._signed_noop(), "permissions": self._signer_permissions()})

    def _signer_permissions(self) -> dict:
        exchange = self.exchange()
        wallet = self.credential("HYPERLIQUID_WALLET_ADDRESS").lower()
        signer = exchange.eth_get_address_from_private_key(self.credential("HYPERLIQUID_PRIVATE_KEY")).lower()
        if signer == wallet:
            return {
                "source": "the signing key is the account's own key",
                "can_trade": True,
                "can_withdraw": True,
                "can_transfer": True,
                "reported": {"signer": signer},
            }
        answer = self.ccxt_call(lambda: exchange.publicPostInfo({"type": "userRole", "user": signer}), safe=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("role"), str):
            self.malformed("userRole without a role")
        master = (
            str((answer.get("data") or {}).get("user") or "").lower() if isinstance(answer.get("data"), dict) else ""
        )
        if answer["role"] != "agent" or master != wallet:
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                f"HYPERLIQUID_PRIVATE_KEY signs as {signer}, which Hyperliquid knows as {answer['role']!r}"
                f"{f' of {master}' if master else ''}, not as an API wallet of {wallet}.",
                provider=self.provider,
            )
        return {
            "source": "POST /info userRole",
            "can_trade": True,
            "can_withdraw": False,
            "can_transfer": False,
            "reported": {"signer": signer, "role": "agent", "master": master},
        }

    def _signed_noop(self) -> dict:
        """Sign a ``noop`` (it only uses up a nonce): Hyperliquid refuses it unless the private key is the
        wallet's or an agent approved for it, which a public balance read could never show."""
        exchange = self.exchange()
        action = {"type": "noop"}
        nonce = int(time.time() * 1000)

        def post():
            signature = exchange.sign_l1_action(action, nonce)
            try:
                return exchange.privatePostExchange({"action": action, "nonce": nonce, "signature": signature})
            except ccxt.ExchangeError as exc:  # ccxt raises on {"status": "err"}: the key was refused
                if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.BadResponse)):
                    raise
                return {"status": "err", "response": str(exc)}

        body = self.ccxt_call(post, safe=False)
        if not isinstance(body, dict) or body.get("status") != "ok":
            reason = body.get("response") if isinstance(body, dict) else body
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                f"Hyperliquid refused the signed check: {str(reason)[:200]}",
                provider=self.provider,
            )
        return {"signed_action": "noop", "wallet": self.credentials["HYPERLIQUID_WALLET_ADDRESS"]}

    def holdings(self) -> dict[str, Decimal]:
        """Perpetual positions (signed contracts) per symbol."""
        rows = self.op("positions.fetch", "fetch_positions", safe=True)
        result = {}
        for row in rows:
            contracts = Decimal(str(row.get("contracts") or 0))
            if contracts:
                result[row["symbol"]] = -contracts if row.get("side") == "short" else contracts
        return result
