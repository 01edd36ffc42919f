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

# pg_advisory_lock key of the beat that dispatches: "cpbeat" in ASCII.
LEADER_LOCK_KEY = 0x637062656174


class BeatLeadership:
    """Which of several running beats dispatches the schedule: the one holding a Postgres session advisory lock
    on a connection of its own. Two beats at once (a second ``make run``, a deploy that overlaps, a standby
    started on purpose) would otherwise each send every entry, and race on writing the default entries at start.
    The lock goes with its connection: a leader that dies or loses the database loses it at once, and a standby
    takes over on its next tick."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._conn = None
        self.leading = False

    def _connect(self):
        import psycopg

        s = connections[self.alias].settings_dict
        return psycopg.connect(
            dbname=s["NAME"],
            user=s["USER"],
            password=s["PASSWORD"] or None,
            host=s["HOST"] or None,
            port=s["PORT"] or None,
            autocommit=True,
            connect_timeout=s.get("OPTIONS", {}).get("connect_timeout", 5),
        )

    def holds(self) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn, self.leading = self._connect(), False
            if self.leading:
                self._conn.execute("SELECT 1")  # the lock lives as long as this session
            else:
                self.leading = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [LEADER_LOCK_KEY]).fetchone()[0]
        except psycopg.Error as exc:
            if self.leading:
                logger.warning("beat: lost its leader lock with its database session (%s)", exc)
            self.release()
        return self.leading

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                logger.debug("beat: closing the leader session failed", exc_info=True)
        self._conn, self.leading = None, False


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler that also writes beat's heartbeat as it ticks.

    django-celery-beat catches database errors in its change check and its sync, but not in the full re-read of
    the schedule (every five minutes) or an entry's save when it falls due: one of those during an outage used to
    end beat. Here a tick that meets an unavailable database is logged, its connections are dropped so that the
    next tick connects afresh, and beat tries again after one heartbeat interval, running the schedule it last
    read meanwhile. No heartbeat is written while the database is down, so status reports beat as stale then.

    Of several beats at once only the leader (``BeatLeadership``) dispatches; the others tick as standbys, writing
    their heartbeat, and one takes over within a tick of the leader's end.
    """

    def __init__(self, *args, **kwargs):
        self._last_heartbeat = 0.0
        self._started_at = timezone.now()
        self._leadership = BeatLeadership()
        self._schedule_installed = False
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        """Only the leader writes the default entries (a standby reads what the leader wrote, and writes them on
        taking over)."""
        try:
            leading = self._leadership.holds()
        except Exception:
            leading = False
        if leading:
            super().setup_schedule()
            self._schedule_installed = True
            logger.info("beat: leading (holds the leader lock); dispatching the schedule")
        else:
            logger.info("beat: standby (another beat holds the leader lock); dispatching nothing until it goes")

    def close(self):
        try:
            super().close()
        finally:
            self._leadership.release()

    def _lead(self) -> bool:
        was_leading = self._leadership.leading
        if not self._leadership.holds():
            return False
        if not was_leading:
            logger.info("beat: leading (took the leader lock); dispatching the schedule")
        if not self._schedule_installed:
            super().setup_schedule()
            self._schedule_installed = True
        return True

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
            if not self._lead():
                return interval
            return min(super().tick(*args, **kwargs), interval)
        except DATABASE_UNAVAILABLE_ERRORS as exc:
            logger.warning("beat: the database is unavailable (%s); trying again in %s s", exc, interval)
            connections.close_all()
            return interval
