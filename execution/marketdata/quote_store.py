"""Keeping the quote tables bounded: day partitions created ahead and dropped past ``ARB_QUOTE_RETENTION_HOURS``,
and the 1-minute history (``QuoteMinute``) and the funding rates that outlive them, kept ``ARB_QUOTE_HISTORY_DAYS``
(the history funding replays read; a payment is booked hours after its funding time, long before that).

Beat folds closed minutes every minute (``execution.downsample_quotes``), so a day is folded a day or more before
its partition is dropped. The fold is an upsert over a window that starts at the last stored minute, so running it
twice, or late, gives the same rows. The partition functions belong to migration 0016 (SECURITY DEFINER, owned by
the owner role), as the trace store's do; each created or dropped day is audited as a platform-wide event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from controlplane.services import audit_record

logger = logging.getLogger(__name__)

PARTITIONED = ("execution_spotquote", "execution_basisquote")


@dataclass
class QuoteMaintenance:
    created: list[str] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    minutes_deleted: int = 0
    funding_rates_deleted: int = 0

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "dropped": [{**row, "day": row["day"].isoformat()} for row in self.dropped],
            "minutes_deleted": self.minutes_deleted,
            "funding_rates_deleted": self.funding_rates_deleted,
        }


def quote_partition_days(table: str = "execution_spotquote") -> list[date]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname ~ %s ORDER BY c.relname",
            [table, f"^{table}_p[0-9]{{8}}$"],
        )
        names = [row[0] for row in cursor.fetchall()]
    return [date(int(n[-8:-4]), int(n[-4:-2]), int(n[-2:])) for n in names]


def quote_partitions_maintain(
    *,
    now: datetime | None = None,
    ahead_days: int | None = None,
    retention_hours: int | None = None,
    history_days: int | None = None,
    actor_name: str = "beat",
) -> QuoteMaintenance:
    """Create today's and the next ``ahead_days`` days' partitions; drop every day that ended before
    ``now - retention_hours`` (whole days only, so up to a day more than the retention is kept); delete minutes
    and funding rates older than ``history_days``."""
    now = now or timezone.now()
    ahead_days = settings.ARB_QUOTE_PARTITIONS_AHEAD_DAYS if ahead_days is None else ahead_days
    retention_hours = settings.ARB_QUOTE_RETENTION_HOURS if retention_hours is None else retention_hours
    history_days = settings.ARB_QUOTE_HISTORY_DAYS if history_days is None else history_days
    if retention_hours < 24:
        raise ValueError("retention_hours must be at least 24: quotes are dropped by whole days")
    cutoff = (now - timedelta(hours=retention_hours)).date()  # days before this one ended before now - retention
    result = QuoteMaintenance()
    with transaction.atomic(), connection.cursor() as cursor:
        for table in PARTITIONED:
            for offset in range(ahead_days + 1):
                day = now.date() + timedelta(days=offset)
                cursor.execute("SELECT marketdata_quotes_ensure_day(%s, %s)", [table, day])
                if cursor.fetchone()[0]:
                    result.created.append(f"{table}_p{day:%Y%m%d}")
            cursor.execute(
                "SELECT partition_name, day, estimated_rows FROM marketdata_quotes_drop_days_before(%s, %s)",
                [table, cutoff],
            )
            result.dropped += [
                {"partition": name, "day": day, "estimated_rows": rows} for name, day, rows in cursor.fetchall()
            ]
        history_from = now - timedelta(days=history_days)
        cursor.execute("DELETE FROM execution_quoteminute WHERE minute < %s", [history_from])
        result.minutes_deleted = cursor.rowcount
        cursor.execute("DELETE FROM execution_fundingrate WHERE funding_at < %s", [history_from])
        result.funding_rates_deleted = cursor.rowcount
        if result.created or result.dropped or result.minutes_deleted or result.funding_rates_deleted:
            audit_record(
                action="marketdata.quote_partitions_maintained",
                resource_type="execution_spotquote",
                resource_id=now.date().isoformat(),
                actor_name=actor_name,
                tenant_id=None,
                after={
                    **result.as_dict(),
                    "retention_hours": retention_hours,
                    "cutoff": cutoff.isoformat(),
                    "history_days": history_days,
                },
            )
    for row in result.dropped:
        logger.info("quote partition dropped past retention", extra={**row, "day": row["day"].isoformat()})
    return result


FOLD_SQL = """
INSERT INTO execution_quoteminute (venue, instrument_id, market_type, minute, mid_open, mid_high, mid_low, mid_close,
                                   spread_open, spread_high, spread_low, spread_close, samples)
SELECT venue, instrument_id, market_type, date_trunc('minute', received_at) AS minute,
       (array_agg((bid + ask) / 2 ORDER BY received_at, id))[1], max((bid + ask) / 2), min((bid + ask) / 2),
       (array_agg((bid + ask) / 2 ORDER BY received_at DESC, id DESC))[1],
       (array_agg(ask - bid ORDER BY received_at, id))[1], max(ask - bid), min(ask - bid),
       (array_agg(ask - bid ORDER BY received_at DESC, id DESC))[1],
       count(*)
FROM execution_spotquote
WHERE received_at >= %s AND received_at < %s
GROUP BY venue, instrument_id, market_type, date_trunc('minute', received_at)
ON CONFLICT (instrument_id, venue, market_type, minute) DO UPDATE SET
    mid_open = EXCLUDED.mid_open, mid_high = EXCLUDED.mid_high, mid_low = EXCLUDED.mid_low,
    mid_close = EXCLUDED.mid_close, spread_open = EXCLUDED.spread_open, spread_high = EXCLUDED.spread_high,
    spread_low = EXCLUDED.spread_low, spread_close = EXCLUDED.spread_close, samples = EXCLUDED.samples
"""


def quote_minutes_downsample(*, now: datetime | None = None) -> int:
    """Fold every closed minute since the last stored one (that one again: quotes received late for it still
    count) into ``QuoteMinute``; with no minute stored yet, everything still retained. Returns the rows written."""
    now = now or timezone.now()
    end = now.replace(second=0, microsecond=0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT max(minute) FROM execution_quoteminute")
        last = cursor.fetchone()[0]
        start = last if last is not None else end - timedelta(hours=settings.ARB_QUOTE_RETENTION_HOURS + 24)
        cursor.execute(FOLD_SQL, [start, end])
        return cursor.rowcount
