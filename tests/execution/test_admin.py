"""The market-data observatory: bars are read-only, instruments change only through the audited service."""

from datetime import UTC, datetime

import pytest

from controlplane.models import AuditEvent
from execution.models import Instrument
from tests.execution.helpers import store_bars
from tests.factories import InstrumentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    """Admin pages render without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def superuser(tenant_a):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def test_bars_and_instruments_are_listed(client, superuser):
    es = InstrumentFactory(symbol="ESADMIN")
    store_bars(es, datetime(2026, 11, 24, 15, 0, tzinfo=UTC), 3)
    client.force_login(superuser)
    assert b"ESADMIN" in client.get("/admin/execution/bar/").content
    assert b"ESADMIN" in client.get("/admin/execution/instrument/").content
    assert client.get("/admin/execution/bar/add/").status_code == 403


def test_a_superuser_adds_an_instrument_and_it_is_audited_platform_wide(client, superuser):
    client.force_login(superuser)
    response = client.post(
        "/admin/execution/instrument/add/",
        {
            "symbol": "MGCTEST",
            "venue": "COMEX",
            "asset_class": "future",
            "tick_size": "0.1",
            "multiplier": "10",
            "calendar": "CMEGlobex_Metals",
        },
    )
    assert response.status_code == 302, response.content
    assert Instrument.objects.get(symbol="MGCTEST").calendar == "CMEGlobex_Metals"
    event = AuditEvent.unscoped.get(action="instrument.create", resource_id="MGCTEST")
    assert event.tenant_id is None and event.actor == "root"


def test_an_unsupported_calendar_is_refused(client, superuser):
    client.force_login(superuser)
    response = client.post(
        "/admin/execution/instrument/add/",
        {
            "symbol": "BAD",
            "venue": "X",
            "asset_class": "future",
            "tick_size": "1",
            "multiplier": "1",
            "calendar": "Mars",
        },
    )
    assert response.status_code == 200 and b"not a supported calendar" in response.content
    assert not Instrument.objects.filter(symbol="BAD").exists()
