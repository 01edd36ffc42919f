"""State changes of market reference data, platform-wide and each audited in its own transaction: bar ingest,
instrument edits and venue symbol mappings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from controlplane import hooks, tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from execution.marketdata.barfiles import BarRow, validate_rows
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
    *, instrument: Instrument, timeframe: str, rows: Sequence[BarRow], source: str, actor_name: str, origin: str = ""
) -> IngestResult:
    """Store bars, skipping those already stored: idempotent, so a retried or overlapping ingest is harmless.
    Once they are committed, the bars it stored fill every tenant's working sim orders on the instrument
    (the declared hook ``marketdata.bars_stored``: the paper venue sits above market data): paper fills follow the bars, whether a file import or a
    provider's refresh stored them and whether or not a bot ticks the instrument.

    COPY into a transaction-local staging table, then one INSERT ... ON CONFLICT DO NOTHING: tens of thousands of
    rows a second, where ORM inserts manage a few thousand; up to ``_ARRAY_ROWS`` rows (a refresh's one bar) are
    that INSERT alone, from one array per column. Rows are validated again here (callers other than the
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
            if len(rows) <= _ARRAY_ROWS:
                columns = [list(column) for column in zip(*_columns(rows), strict=True)]
                cursor.execute(_INSERT_SQL.format(source=_UNNEST_ROWS), [instrument.id, timeframe, source, *columns])
            else:
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_TABLE} (ts timestamptz, open numeric, high numeric, "
                    "low numeric, close numeric, volume numeric) ON COMMIT DROP"
                )
                cursor.execute(f"TRUNCATE {_STAGE_TABLE}")
                with cursor.copy(f"COPY {_STAGE_TABLE} (ts, open, high, low, close, volume) FROM STDIN") as copy:
                    for row in _columns(rows):
                        copy.write_row(row)
                cursor.execute(_INSERT_SQL.format(source=_STAGE_TABLE), [instrument.id, timeframe, source])
            stored = [ts for (ts,) in cursor.fetchall()]
            inserted = len(stored)
        timestamps = [row.ts for row in rows]
        result = IngestResult(len(rows), inserted, min(timestamps), max(timestamps))
        _platform_audit(
            action="bars.ingest",
            resource_type="instrument",
            resource_id=instrument.symbol,
            actor_name=actor_name,
            after={
                "timeframe": timeframe,
                "source": source,
                "origin": origin,
                "received": result.received,
                "inserted": result.inserted,
                "first_ts": result.first_ts.isoformat(),
                "last_ts": result.last_ts.isoformat(),
            },
        )
    if stored:
        hooks.hook("marketdata.bars_stored")(instrument=instrument, timeframe=timeframe, bar_ts=stored)
    return result


# Up to this many rows travel as one array per column in the insert itself; more go through COPY and a staging
# table. A provider's refresh stores one bar an instrument: its staging table (created and dropped with each
# transaction) cost four statements and more backend CPU than the insert, and left dead catalog rows (pg_class,
# pg_attribute) behind each time, which every later catalog lookup reads past until a vacuum.
_ARRAY_ROWS = 1000

_INSERT_SQL = (
    f"INSERT INTO {Bar._meta.db_table} (instrument_id, timeframe, ts, open, high, low, close, volume, source) "
    "SELECT %s, %s, ts, open, high, low, close, volume, %s FROM {source} "
    "ON CONFLICT (instrument_id, timeframe, ts) DO NOTHING RETURNING ts"
)


_UNNEST_ROWS = (
    "unnest(%s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[]) "
    "AS r(ts, open, high, low, close, volume)"
)


def _columns(rows: Sequence[BarRow]):
    return ((row.ts, row.open, row.high, row.low, row.close, row.volume) for row in rows)


def _platform_audit(**kwargs) -> None:
    """Reference data is global, so its audit events are platform-wide (no tenant), whoever acted."""
    with tenancy.tenant_context(None):
        audit_record(tenant_id=None, **kwargs)


INSTRUMENT_FIELDS = (
    "symbol",
    "venue",
    "asset_class",
    "tick_size",
    "multiplier",
    "calendar",
    "data_symbols",
    "venue_symbols",
)


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
            action="instrument.create" if before is None else "instrument.update",
            resource_type="instrument",
            resource_id=instrument.symbol,
            actor=actor,
            before=before,
            after={field: str(getattr(instrument, field)) for field in INSTRUMENT_FIELDS},
        )
    return instrument


def venue_symbols_map(*, venue: str, symbols: Sequence[str] = (), market: str | None = None, actor_name: str) -> dict:
    """Read ``venue``'s market list once through its client (the current tenant's keys; the list is public) and
    store each crypto instrument's market there (``symbols``, or every crypto instrument), audited with the old
    and new mapping. ``market`` names the venue's market for the one instrument given (perpetuals: our quote is
    not their settlement coin); it is checked against the list, never taken on trust. An instrument that cannot
    be resolved is reported with its fix and left as it was; nothing is guessed."""
    from integrations.clients import client_for
    from integrations.venue_symbols import CCXT_MARKET_TYPES, resolve_from_markets

    if venue not in CCXT_MARKET_TYPES:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            details={"venue": [f"{venue!r} is not a crypto venue; one of {', '.join(CCXT_MARKET_TYPES)}."]},
        )
    if market and len(symbols) != 1:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR, details={"symbol": ["A venue market is named for exactly one instrument."]}
        )
    wanted = Instrument.objects.filter(asset_class=Instrument.AssetClass.CRYPTO)
    if symbols:
        wanted = wanted.filter(symbol__in=list(symbols))
        missing = sorted(set(symbols) - set(wanted.values_list("symbol", flat=True)))
        if missing:
            raise ControlPlaneError(
                ErrorCode.NOT_FOUND, f"No crypto instrument {', '.join(missing)}.", details={"instruments": missing}
            )
    markets = client_for(venue).markets()
    result: dict = {"venue": venue, "mapped": {}, "unchanged": {}, "unmapped": {}}
    for symbol in sorted(wanted.values_list("symbol", flat=True)):
        try:
            mapping = resolve_from_markets(symbol=symbol, venue=venue, markets=markets, explicit=market).as_json()
        except ControlPlaneError as error:
            result["unmapped"][symbol] = {
                "error_code": str(error.code),
                "message": error.message,
                "suggested_fix": error.suggested_fix,
            }
            continue
        with transaction.atomic():
            instrument = Instrument.objects.select_for_update().get(symbol=symbol)
            before = (instrument.venue_symbols or {}).get(venue)
            if before == mapping:
                result["unchanged"][symbol] = mapping
                continue
            instrument.venue_symbols = {**(instrument.venue_symbols or {}), venue: mapping}
            instrument.full_clean()
            instrument.save(update_fields=["venue_symbols"])
            _platform_audit(
                action="instrument.venue_symbol",
                resource_type="instrument",
                resource_id=symbol,
                actor_name=actor_name,
                before={"venue": venue, "mapping": before},
                after={"venue": venue, "mapping": mapping, "source": f"{venue} load_markets"},
            )
        result["mapped"][symbol] = mapping
    return result


# --- Trading states and risk incidents (tenant-owned; operators act through the API and admin) ---------------
