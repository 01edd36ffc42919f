"""Celery beat's scheduler: django-celery-beat's, writing beat's own heartbeat as it ticks."""

from __future__ import annotations

import logging
import socket
import time

from django.conf import settings
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from controlplane.heartbeats import record_heartbeat

logger = logging.getLogger(__name__)


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler that also writes beat's heartbeat as it ticks."""

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
            except Exception:
                logger.exception("beat heartbeat could not be written")
        return min(super().tick(*args, **kwargs), interval)
