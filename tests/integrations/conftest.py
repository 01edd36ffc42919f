import pytest

from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)


@pytest.fixture
def point_at(httpserver, settings):
    def _point(*providers):
        settings.INTEGRATION_BASE_URLS = {p: httpserver.url_for("").rstrip("/") for p in providers}
        return httpserver

    return _point
