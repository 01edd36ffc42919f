"""One loop, one instance: the supervisor's advisory lock and its run records (its heartbeat).

The lock is a Postgres session advisory lock on a dedicated key, taken with ``pg_try_advisory_lock`` on the
sweep's own connection and held for the whole run: a second beat, or a second worker running the same task, finds
it taken and returns at once ("another supervisor holds the lock"). It goes with its session, so a worker that dies
mid-run frees it. Each run is a ``SupervisorRun`` row whose ``fence`` is one more than the last one, taken under the
lock.

Stale: no run finished within ``STALE_AFTER_INTERVALS`` x ``SUPERVISOR_INTERVAL_SECONDS`` (4 x 15 s = one minute by
default): three missed sweeps is beat or the workers down, not one slow sweep. System status is then DEGRADED.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from oversight.models import SupervisorRun

logger = logging.getLogger(__name__)

# pg_advisory_lock key of the supervisor: "suprvsr" in ASCII (beat's leadership uses "cpbeat").
LOCK_KEY = 0x73757072767372
STALE_AFTER_INTERVALS = 4
RUN_RETENTION = timedelta(days=1)


@contextmanager
def supervisor_lock() -> Iterator[bool]:
    """Yields whether this session holds the supervisor's lock; releases it on the way out."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def run_start(now: datetime) -> SupervisorRun:
    """The run record, with the next fence (the caller holds the lock, so no two runs take the same one)."""
    with transaction.atomic():
        last = SupervisorRun.objects.aggregate(fence=Max("fence"))["fence"] or 0
        return SupervisorRun.objects.create(
            fence=last + 1, hostname=socket.gethostname(), pid=os.getpid(), started_at=now
        )


def run_finish(run: SupervisorRun) -> None:
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        SupervisorRun.objects.filter(started_at__lt=run.finished_at - RUN_RETENTION).delete()


def stale_after() -> timedelta:
    return timedelta(seconds=STALE_AFTER_INTERVALS * settings.SUPERVISOR_INTERVAL_SECONDS)


def supervisor_heartbeat() -> dict:
    """The supervisor's last finished run, its age and whether it is stale (read by system status and the
    dashboard). No finished run at all is stale."""
    now = timezone.now()
    run = SupervisorRun.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    age = (now - run.finished_at).total_seconds() if run else None
    return {
        "last_run_at": run.finished_at if run else None,
        "age_seconds": round(age, 1) if age is not None else None,
        "stale": run is None or now - run.finished_at > stale_after(),
        "stale_after_seconds": stale_after().total_seconds(),
        "fence": run.fence if run else None,
        "holder": f"{run.hostname}:{run.pid}" if run else None,
        "actions": run.actions if run else None,
        "breaches_open": run.breaches_open if run else None,
        "unknown": len(run.unknown) if run else None,
        "errors": len(run.errors) if run else None,
    }
