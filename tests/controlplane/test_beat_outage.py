"""Beat keeps ticking through a database outage and writes its heartbeat again once the database is back.

django-celery-beat catches database errors in some of its reads (the change check, the sync) but not in the full
re-read of the schedule it does every five minutes, nor in an entry's save while it is due; an outage that
overlaps one killed beat. The test moves the last full read five minutes back so that the next tick does one.
"""

import datetime as dt
import logging

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from controlplane.beat import HeartbeatDatabaseScheduler
from controlplane.celery import app
from controlplane.models import ProcessHeartbeat
from tests.controlplane.test_database_outage import _closed_port


@pytest.fixture
def scheduler(django_db_setup, committed_db):
    scheduler = HeartbeatDatabaseScheduler(app=app)
    yield scheduler
    scheduler.close()  # its leader session, before the test database is dropped


def test_beat_logs_a_database_outage_keeps_ticking_and_reconnects_when_the_database_is_back(scheduler, caplog):
    scheduler.tick()
    default = connections["default"]
    saved = {key: default.settings_dict[key] for key in ("HOST", "PORT")}
    default.close()
    default.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        scheduler._last_full_sync = dt.datetime.now() - dt.timedelta(minutes=6)
        scheduler._last_heartbeat = 0.0
        with caplog.at_level(logging.WARNING, logger="controlplane.beat"):
            delay = scheduler.tick()
        assert 0 < delay <= settings.HEARTBEAT_INTERVAL_SECONDS
        assert "database is unavailable" in caplog.text
    finally:
        default.close()
        default.settings_dict.update(saved)
    back_at = timezone.now()
    scheduler._last_heartbeat = 0.0
    scheduler.tick()
    assert ProcessHeartbeat.objects.filter(kind="beat", last_seen_at__gte=back_at).exists()
