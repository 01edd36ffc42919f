"""ccxt venues: ccxt's exceptions map to our codes, and a base URL override reaches every API host."""

import ccxt
import pytest

from controlplane import tenancy
from integrations.clients import client_for
from integrations.providers.ccxt_client import _rebase, code_for_ccxt_error


@pytest.mark.parametrize(
    "exc,code",
    [
        (ccxt.AuthenticationError("bad key"), "INTEGRATION_AUTH_FAILED"),
        (ccxt.RateLimitExceeded("slow down"), "INTEGRATION_RATE_LIMITED"),
        (ccxt.RequestTimeout("late"), "INTEGRATION_TIMEOUT"),
        (ccxt.ExchangeNotAvailable("down"), "INTEGRATION_UNREACHABLE"),
        (ccxt.BadResponse("garbage"), "INTEGRATION_BAD_RESPONSE"),
    ],
)
def test_ccxt_errors_map_to_one_code(exc, code):
    assert code_for_ccxt_error(exc) == code


def test_rebase_replaces_every_host():
    urls = {"public": "https://api.kraken.com/0/public", "private": "https://api.kraken.com/0/private"}
    assert _rebase(urls, "http://127.0.0.1:9") == {
        "public": "http://127.0.0.1:9/0/public",
        "private": "http://127.0.0.1:9/0/private",
    }


@pytest.mark.django_db
def test_kraken_balance_against_an_unreachable_host_is_reported_and_recorded(tenant_a, owner_a, settings):
    from integrations import services
    from integrations.models import IntegrationUsageEvent

    settings.INTEGRATION_BASE_URLS = {"kraken": "http://127.0.0.1:1"}
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    with tenancy.tenant_context(tenant_a.id):
        services.credentials_set(
            provider="kraken",
            values={"KRAKEN_API_KEY": "kr-abcdefghijkl", "KRAKEN_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0"},
            actor=owner_a,
        )
        assert client_for("kraken").exchange().urls["api"]["private"].startswith("http://127.0.0.1:1")
        result = services.verify_provider(provider="kraken", actor_name="test")
        assert result.error_code == "INTEGRATION_UNREACHABLE"
        assert IntegrationUsageEvent.objects.get(provider="kraken").error_code == "INTEGRATION_UNREACHABLE"
