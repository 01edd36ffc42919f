"""Binance.US through ccxt: its account read and the key's API restrictions."""

from __future__ import annotations

import ccxt

from controlplane.errors import ErrorCode
from integrations.permissions import UNKNOWN, reported_flags
from integrations.providers.base import IntegrationError
from integrations.providers.ccxt_client import CcxtVenueClient


class BinanceUSClient(CcxtVenueClient):
    """Binance.US. Verify reads ``GET /api/v3/account`` (``canTrade``, ``canWithdraw``: the account's, not the
    key's; https://docs.binance.us/#get-user-account-information-user_data), then asks for the key's own
    permissions with ``GET /sapi/v1/account/apiRestrictions`` (``enableWithdrawals``, ``enableInternalTransfer``,
    ``permitsUniversalTransfer``, ``enableSpotAndMarginTrading``; Binance's documented call,
    https://developers.binance.com/docs/wallet/account/api-key-permission, which ccxt exposes on binanceus as
    ``sapiGetAccountApiRestrictions``). Binance.US documents no key-permission call of its own (ccxt's binanceus
    endpoint list, which follows docs.binance.us, has none), so when that call is refused the permissions are
    ``unknown`` and an owner confirms the key (the account's ``canWithdraw`` says nothing about the key)."""

    provider = "binanceus"
    exchange_id = "binanceus"
    config_fields = {"apiKey": "BINANCEUS_API_KEY", "secret": "BINANCEUS_API_SECRET"}
    trade_only_key_fix = (
        "In Binance.US (Profile, API Management), edit the key's restrictions: keep Enable "
        "Reading and Enable Spot Trading, leave Enable Withdrawals and transfers off."
    )
    FIELDS = (
        "enableReading",
        "enableSpotAndMarginTrading",
        "enableWithdrawals",
        "enableInternalTransfer",
        "permitsUniversalTransfer",
        "ipRestrict",
    )

    def _verify(self) -> dict:
        exchange = self.exchange()
        account = exchange.privateGetAccount()
        if not isinstance(account, dict) or not isinstance(account.get("canTrade"), bool):
            self.malformed("account without canTrade")
        try:
            restrictions = exchange.sapiGetAccountApiRestrictions()
        except (ccxt.RequestTimeout, ccxt.RateLimitExceeded, ccxt.DDoSProtection):
            raise  # transient: verify again later rather than call the key unknown
        except ccxt.BaseError:
            restrictions = None  # refused or not served: the venue does not say
        if isinstance(restrictions, dict) and isinstance(restrictions.get("enableWithdrawals"), bool):
            transfer = bool(restrictions.get("enableInternalTransfer") or restrictions.get("permitsUniversalTransfer"))
            return {
                "permissions": {
                    "source": "GET /sapi/v1/account/apiRestrictions",
                    "can_trade": bool(restrictions.get("enableSpotAndMarginTrading")),
                    "can_withdraw": restrictions["enableWithdrawals"],
                    "can_transfer": transfer,
                    "reported": reported_flags(restrictions, self.FIELDS),
                }
            }
        if account["canTrade"] is False:
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                "The Binance.US account cannot trade.",
                provider=self.provider,
                suggested_fix="Check the account's trading status at Binance.US, then verify.",
            )
        return {"permissions": UNKNOWN}
