"""State changes of market data: bar ingest and instrument edits, each audited in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from controlplane import tenancy
from controlplane.services import audit_record
from execution.barfiles import BarRow, validate_rows
from execution.models import Bar, Instrument

_STAGE_TABLE = "execution_bar_ingest_stage"


@dataclass(frozen=True)
class IngestResult:
    received: int
    inserted: int
    first_ts: datetime | None
    last_ts: datetime | None

    @property
    def already_stored(self) -> int:
        return self.received - self.inserted


def bars_ingest(
    *, instrument: Instrument, timeframe: str, rows: Sequence[BarRow], source: str, actor_name: str,
    origin: str = "",
) -> IngestResult:
    """Store bars, skipping those already stored: idempotent, so a retried or overlapping ingest is harmless.

    COPY into a transaction-local staging table, then one INSERT ... ON CONFLICT DO NOTHING: tens of thousands of
    rows a second, where ORM inserts manage a few thousand. Rows are validated again here (callers other than the
    file reader exist); any problem raises ``ValidationError`` before anything is written.
    """
    if source not in Bar.Source.values:
        raise ValidationError({"source": [f"unknown source {source!r}"]})
    problems = validate_rows(list(rows), timeframe)
    if problems:
        raise ValidationError({"rows": problems})
    if not rows:
        return IngestResult(0, 0, None, None)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_TABLE} (ts timestamptz, open numeric, high numeric, "
                "low numeric, close numeric, volume numeric) ON COMMIT DROP"
            )
            cursor.execute(f"TRUNCATE {_STAGE_TABLE}")
            with cursor.copy(f"COPY {_STAGE_TABLE} (ts, open, high, low, close, volume) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((row.ts, row.open, row.high, row.low, row.close, row.volume))
            cursor.execute(
                f"INSERT INTO {Bar._meta.db_table} (instrument_id, timeframe, ts, open, high, low, close, volume, "
                f"source) SELECT %s, %s, ts, open, high, low, close, volume, %s FROM {_STAGE_TABLE} "
                "ON CONFLICT (instrument_id, timeframe, ts) DO NOTHING",
                [instrument.id, timeframe, source],
            )
            inserted = cursor.rowcount
        timestamps = [row.ts for row in rows]
        result = IngestResult(len(rows), inserted, min(timestamps), max(timestamps))
        _platform_audit(
            action="bars.ingest", resource_type="instrument", resource_id=instrument.symbol, actor_name=actor_name,
            after={"timeframe": timeframe, "source": source, "origin": origin, "received": result.received,
                   "inserted": result.inserted, "first_ts": result.first_ts.isoformat(),
                   "last_ts": result.last_ts.isoformat()},
        )
    return result


def _platform_audit(**kwargs) -> None:
    """Reference data is global, so its audit events are platform-wide (no tenant), whoever acted."""
    with tenancy.tenant_context(None):
        audit_record(tenant_id=None, **kwargs)


INSTRUMENT_FIELDS = ("symbol", "venue", "asset_class", "tick_size", "multiplier", "calendar")


def instrument_save(*, instrument: Instrument, actor) -> Instrument:
    """Create or change an instrument (superusers, in admin), with the old and new values audited."""
    instrument.full_clean()
    with transaction.atomic():
        before = None
        if instrument.pk is not None:
            current = Instrument.objects.select_for_update().get(pk=instrument.pk)
            before = {field: str(getattr(current, field)) for field in INSTRUMENT_FIELDS}
        instrument.save()
        _platform_audit(
            action="instrument.create" if before is None else "instrument.update", resource_type="instrument",
            resource_id=instrument.symbol, actor=actor, before=before,
            after={field: str(getattr(instrument, field)) for field in INSTRUMENT_FIELDS},
        )
    return instrument
