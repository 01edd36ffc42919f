"""Fixtures for every test that calls a provider client: no keys from the machine's environment, fast retries,
short timeouts, and no breaker, token or send state left in the shared Redis afterwards. Test modules (and
conftests) import them by name, which registers them as autouse fixtures there."""

import pytest
import redis
from django.conf import settings as django_settings


@pytest.fixture(autouse=True)
def integration_settings(settings):
    """Test servers set the base URLs they serve."""
    settings.INTEGRATION_ENV_CREDENTIALS = {"REDIS_URL": django_settings.REDIS_URL}
    settings.INTEGRATION_BASE_URLS = {}
    settings.INTEGRATION_RETRY_BACKOFF_SECONDS = 0
    settings.INTEGRATION_TIMEOUT_SECONDS = 2
    return settings


@pytest.fixture(autouse=True)
def clean_breakers():
    """Breaker state lives in the shared Redis under our namespace only; drop just those keys."""
    yield
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for pattern in (
        "pybreaker:cp:integrations:breaker:*",
        "cp:integrations:breaker:*",
        "cp:integrations:token:*",
        "cp:venues:sent:*",
    ):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()
