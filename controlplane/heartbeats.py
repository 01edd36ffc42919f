"""Worker and beat liveness: each process upserts a heartbeat row that system status reads.

What a frozen worker cannot fake: SIGSTOP freezes every thread of the process, this timer included, so a frozen
worker writes nothing, and system status names ``celery.worker`` once the row is ``HEARTBEAT_STALE_SECONDS`` old
(issue 12 measured 47 s: the last beat was ~13 s old when the bound was 60 s; it is now 30 s at most). With the
prefork pool the timer is the consumer's own event loop, so a loop that is stuck writes nothing either. With the
solo or threads pool the timer is a thread of its own, which would keep writing while the consumer has lost the
broker and is reconnecting; so a beat is written only while the consumer is running on a broker connection.
"""

from __future__ import annotations

import logging
import os

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


def record_heartbeat(
    *, kind: str, hostname: str, queues: list[str] | None = None, started_at=None, fresh_connection: bool = True
) -> None:
    """``fresh_connection``: drop a broken or expired connection first (Celery's timers run outside any request);
    a caller that manages its own connection (the quote collector's loop) passes False."""
    from controlplane.models import ProcessHeartbeat

    now = timezone.now()
    if fresh_connection:
        close_old_connections()
    ProcessHeartbeat.objects.update_or_create(
        kind=kind,
        hostname=hostname,
        defaults={"pid": os.getpid(), "queues": queues or [], "last_seen_at": now},
        create_defaults={
            "pid": os.getpid(),
            "queues": queues or [],
            "last_seen_at": now,
            "started_at": started_at or now,
        },
    )


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A worker bootstep: a row per worker, refreshed every HEARTBEAT_INTERVAL_SECONDS from its timer."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None
        self.started_at = timezone.now()

    def start(self, worker):
        self.beat(worker)
        self.timer_entry = worker.timer.call_repeatedly(settings.HEARTBEAT_INTERVAL_SECONDS, self.beat, (worker,))

    def stop(self, worker):
        if self.timer_entry is not None:
            self.timer_entry.cancel()

    def beat(self, worker):
        consumer = getattr(worker, "consumer", None)
        consuming = (
            consumer is not None
            and consumer.blueprint is not None
            and consumer.blueprint.state == bootsteps.RUN
            and consumer.connection is not None
        )
        if not consuming:
            logger.info("worker heartbeat skipped: the consumer is not consuming")
            return
        try:
            queues = sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
            record_heartbeat(kind="worker", hostname=worker.hostname, queues=queues, started_at=self.started_at)
        except Exception:
            logger.exception("worker heartbeat could not be written")
