"""State changes of the execution layer, each audited in its own transaction: bar ingest, instrument edits and
venue symbol mappings (platform-wide), trading states and risk incident resolution (per tenant)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from bots.models import Bot
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from execution.barfiles import BarRow, validate_rows
from execution.models import Bar, Instrument, RiskIncident, TradingControl, TradingStateChoices

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
    return result


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


def _require_text(field: str, value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={field: ["This field is required."]})
    return value


def _control_snapshot(control: TradingControl) -> dict:
    return {"state": control.state, "reason": control.reason, "set_by": control.set_by}


def trading_state_set(
    *, bot_id: int | None, state: str, reason: str, actor=None, actor_name: str | None = None
) -> TradingControl:
    """Set the trading state of a bot (``bot_id``) or of the tenant in context (``bot_id`` None): ACTIVE,
    REDUCE_ONLY (only orders that shrink exposure pass) or HALTED. Setting the current state again changes
    nothing. The tick and the OMS read it on their next risk check."""
    if state not in TradingStateChoices.values:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            details={"state": [f"{state!r} is not a trading state; one of: {', '.join(TradingStateChoices.values)}."]},
        )
    reason = _require_text("reason", reason)
    tenant_id = tenancy.require_tenant_id()
    with transaction.atomic():
        if bot_id is not None and not Bot.objects.filter(pk=bot_id).exists():
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {bot_id} in this tenant.")
        TradingControl.objects.bulk_create([TradingControl(tenant_id=tenant_id, bot_id=bot_id)], ignore_conflicts=True)
        control = (
            TradingControl.objects.select_for_update().get(bot_id=bot_id)
            if bot_id is not None
            else (TradingControl.objects.select_for_update().get(bot__isnull=True))
        )
        if control.state == state:
            return control
        before = _control_snapshot(control)
        control.state, control.reason = state, reason
        control.set_by = actor_name or (actor.get_username() if getattr(actor, "is_authenticated", False) else "system")
        control.save(update_fields=["state", "reason", "set_by", "updated_at"])
        audit_record(
            action="trading_state.set",
            resource_type="bot" if bot_id is not None else "tenant",
            resource_id=bot_id if bot_id is not None else tenant_id,
            actor=actor,
            actor_name=actor_name,
            before=before,
            after=_control_snapshot(control),
        )
    return control


def risk_incident_resolve(*, incident_id: int, note: str, actor=None, actor_name: str | None = None) -> RiskIncident:
    """Close an open incident with the operator's note; a resolved one cannot be resolved again."""
    note = _require_text("note", note)
    with transaction.atomic():
        incident = RiskIncident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No risk incident {incident_id} in this tenant.")
        if incident.status != RiskIncident.Status.OPEN:
            raise ControlPlaneError(
                ErrorCode.ILLEGAL_TRANSITION,
                f"Risk incident {incident_id} cannot go from {incident.status} to RESOLVED: it was resolved by "
                f"{incident.resolved_by} at {incident.resolved_at.isoformat()}.",
                details={"current": incident.status, "requested": RiskIncident.Status.RESOLVED},
            )
        incident.status, incident.resolved_at, incident.resolution_note = (
            RiskIncident.Status.RESOLVED,
            timezone.now(),
            note,
        )
        incident.resolved_by = actor_name or (
            actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
        )
        incident.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        audit_record(
            action="risk_incident.resolve",
            resource_type="risk_incident",
            resource_id=incident.pk,
            actor=actor,
            actor_name=actor_name,
            before={"status": RiskIncident.Status.OPEN},
            after={"status": incident.status, "note": note, "kind": incident.kind, "bot_id": incident.bot_id},
        )
    return incident
