"""Kraken spot through ccxt: its balance read and the withdraw-permission probe."""

from __future__ import annotations

import ccxt

from integrations.providers.ccxt_client import CcxtVenueClient


class KrakenClient(CcxtVenueClient):
    """Kraken spot REST. Kraken has no call that lists a key's permissions, so verify reads the balance
    (``POST /0/private/Balance``, Query Funds) and then probes ``POST /0/private/WithdrawMethods``, which Kraken
    documents as needing "Funds permissions - Query and Funds permissions - Withdraw"
    (https://docs.kraken.com/api-reference/funding/get-withdrawal-methods). It only lists methods and cannot move
    funds, so the probe is safe: a key without Withdraw Funds is answered ``EGeneral:Permission denied``
    (https://docs.kraken.com/exchange/guides/rest/api-keys), a key with it gets the list. Withdraw Funds also
    covers ``WalletTransfer`` (spot to futures), so the one answer decides both. Trading rights are not probed
    (that would mean sending an order), so ``can_trade`` is None: not reported."""

    provider = "kraken"
    exchange_id = "kraken"
    config_fields = {"apiKey": "KRAKEN_API_KEY", "secret": "KRAKEN_API_SECRET"}
    trade_only_key_fix = (
        "In Kraken (Settings, API), create a key with Query Funds, Query Open/Closed Orders & "
        "Trades, Create & Modify Orders and Cancel/Close Orders; leave Withdraw Funds off."
    )

    def _verify(self) -> dict:
        exchange = self.exchange()
        balance = exchange.privatePostBalance()
        if not isinstance(balance, dict) or not isinstance(balance.get("result"), dict):
            self.malformed("Balance without a result")
        try:
            methods = exchange.privatePostWithdrawMethods()
        except ccxt.PermissionDenied as exc:
            if "EGeneral:Permission denied" not in str(exc):
                raise  # only Kraken's own refusal of the permission proves the key lacks it
            can_withdraw, answer = False, "EGeneral:Permission denied"
        else:
            if not isinstance(methods, dict) or "result" not in methods:
                self.malformed("WithdrawMethods without a result")
            can_withdraw, answer = True, "answered"
        return {
            "currencies": len(balance["result"]),
            "permissions": {
                "source": "POST /0/private/WithdrawMethods (read-only probe)",
                "can_trade": None,
                "can_withdraw": can_withdraw,
                "can_transfer": can_withdraw,
                "reported": {"WithdrawMethods": answer},
            },
        }
