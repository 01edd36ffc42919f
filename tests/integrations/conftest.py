import pytest
import redis
from django.conf import settings as django_settings


@pytest.fixture(autouse=True)
def integration_settings(settings):
    """No keys from the machine's environment, fast retries, short timeouts; test servers set base URLs."""
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
    for key in client.scan_iter("pybreaker:cp:integrations:breaker:*"):
        client.delete(key)
    for key in client.scan_iter("cp:integrations:breaker:*"):
        client.delete(key)
    for pattern in ("cp:integrations:token:*", "cp:venues:sent:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


@pytest.fixture
def point_at(httpserver, settings):
    def _point(*providers):
        settings.INTEGRATION_BASE_URLS = {p: httpserver.url_for("").rstrip("/") for p in providers}
        return httpserver
    return _point
