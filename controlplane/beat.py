"""Celery beat's scheduler: django-celery-beat's, writing beat's own heartbeat as it ticks, and riding out a
database outage instead of dying on its first error."""

from __future__ import annotations

import logging
import socket
import time

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from controlplane.errors import DATABASE_UNAVAILABLE_ERRORS
from controlplane.heartbeats import record_heartbeat

logger = logging.getLogger(__name__)


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler that also writes beat's heartbeat as it ticks.

    django-celery-beat catches database errors in its change check and its sync, but not in the full re-read of
    the schedule (every five minutes) or an entry's save when it falls due: one of those during an outage used to
    end beat. Here a tick that meets an unavailable database is logged, its connections are dropped so that the
    next tick connects afresh, and beat tries again after one heartbeat interval, running the schedule it last
    read meanwhile. No heartbeat is written while the database is down, so status reports beat as stale then.
    """

    def __init__(self, *args, **kwargs):
        self._last_heartbeat = 0.0
        self._started_at = timezone.now()
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        interval = settings.HEARTBEAT_INTERVAL_SECONDS
        if time.monotonic() - self._last_heartbeat >= interval:
            try:
                record_heartbeat(kind="beat", hostname=socket.gethostname(), started_at=self._started_at)
                self._last_heartbeat = time.monotonic()
            except DATABASE_UNAVAILABLE_ERRORS as exc:
                logger.warning("beat heartbeat could not be written: the database is unavailable (%s)", exc)
            except Exception:
                logger.exception("beat heartbeat could not be written")
        try:
            return min(super().tick(*args, **kwargs), interval)
        except DATABASE_UNAVAILABLE_ERRORS as exc:
            logger.warning("beat: the database is unavailable (%s); trying again in %s s", exc, interval)
            connections.close_all()
            return interval
