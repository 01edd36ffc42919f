"""Trace partitions: days created ahead of the bars that will fill them, days past retention dropped whole.

The table is partitioned by day of ``bar_ts`` (migration 0009). Both steps run inside SECURITY DEFINER functions
that migration owns, so the beat task needs no owner credentials and can do nothing but these two things. A trace
for a day that has no partition yet is never refused: it lands in the default partition, and creating its day
moves it in. Each created or dropped day is audited as a platform-wide event and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from controlplane.services import audit_record

logger = logging.getLogger(__name__)

PARTITION_PREFIX = "traces_ticktrace_p"


@dataclass
class MaintenanceResult:
    created: list[date] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "created": [day.isoformat() for day in self.created],
            "dropped": [{**row, "day": row["day"].isoformat()} for row in self.dropped],
        }


def partition_name(day: date) -> str:
    return f"{PARTITION_PREFIX}{day:%Y%m%d}"


def trace_partition_days() -> list[date]:
    """The days that have a partition, oldest first (the default partition is not a day)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'traces_ticktrace'::regclass AND c.relname ~ %s ORDER BY c.relname",
            [f"^{PARTITION_PREFIX}[0-9]{{8}}$"],
        )
        names = [row[0] for row in cursor.fetchall()]
    return [date(int(name[-8:-4]), int(name[-4:-2]), int(name[-2:])) for name in names]


def trace_partitions_maintain(
    *,
    today: date | None = None,
    ahead_days: int | None = None,
    retention_days: int | None = None,
    actor_name: str = "beat",
) -> MaintenanceResult:
    """Create the partitions of today and the next ``ahead_days`` days; drop those of days older than
    ``retention_days`` (a day is dropped once all of it is past the cutoff). Safe to run twice: a day that
    exists is skipped, a day already dropped is gone."""
    today = today or timezone.now().date()
    ahead_days = settings.TRACE_PARTITIONS_AHEAD_DAYS if ahead_days is None else ahead_days
    retention_days = settings.TRACE_RETENTION_DAYS if retention_days is None else retention_days
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1: today's traces are never dropped")
    cutoff = today - timedelta(days=retention_days)
    result = MaintenanceResult()
    with transaction.atomic(), connection.cursor() as cursor:
        for offset in range(ahead_days + 1):
            day = today + timedelta(days=offset)
            cursor.execute("SELECT traces_ticktrace_ensure_day(%s)", [day])
            if cursor.fetchone()[0]:
                result.created.append(day)
        cursor.execute(
            "SELECT partition_name, day, estimated_rows FROM traces_ticktrace_drop_days_before(%s)", [cutoff]
        )
        result.dropped = [
            {"partition": name, "day": day, "estimated_rows": rows} for name, day, rows in cursor.fetchall()
        ]
        if result.created or result.dropped:
            audit_record(
                action="traces.partitions_maintained",
                resource_type="traces_ticktrace",
                resource_id=today.isoformat(),
                actor_name=actor_name,
                tenant_id=None,
                after={
                    **result.as_dict(),
                    "retention_days": retention_days,
                    "cutoff": cutoff.isoformat(),
                    "ahead_days": ahead_days,
                },
            )
    for day in result.created:
        logger.info("trace partition created", extra={"partition": partition_name(day)})
    for row in result.dropped:
        logger.info(
            "trace partition dropped past retention",
            extra={
                "partition": row["partition"],
                "estimated_rows": row["estimated_rows"],
                "retention_days": retention_days,
            },
        )
    return result
