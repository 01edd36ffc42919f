"""Keeping running bots' bars fresh from their market-data providers (beat runs :func:`refresh_bars` per
timeframe, at the bar boundary, before the tick batches read).

For every (instrument, timeframe, provider) that some tenant's RUNNING live-mode bot uses with data source
``databento`` or ``polygon``, fetch the bars since the latest stored one (or a warm-up window when there is none,
and never more than that window: a longer gap stays a gap) through the provider's one client, with the key of a
tenant that runs such a bot (keys are per tenant, bars are global), and ingest them with ``bars_ingest``.
A provider that fails is logged and its usage event records the error; nothing is ingested, so the tick reports
DATA_STALE or DATA_UNAVAILABLE on its own. Databento serves 1s/1m/1h/1d natively; 5m/15m/30m/4h are built from
its 1m bars (only buckets wholly inside the window: every bar that went into one is a real bar).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from bots.models import Runner
from bots.timeframes import timeframe_delta
from controlplane import tenancy
from controlplane.errors import ErrorCode
from controlplane.selectors import active_tenant_ids
from execution.marketdata.data_symbols import unmapped_message
from execution.marketdata.services import bars_ingest
from execution.models import Bar, Instrument
from integrations import credentials
from integrations.clients import client_for
from integrations.providers.base import IntegrationError
from integrations.providers.databento.client import DATABENTO_SCHEMAS
from integrations.providers.market_data import ProviderBar
from integrations.registry import get_provider

logger = logging.getLogger(__name__)

PROVIDER_SOURCES = (Bar.Source.DATABENTO.value, Bar.Source.POLYGON.value)
# A refused or missing key may be another tenant's problem only: try the next tenant's key.
_KEY_PROBLEMS = {ErrorCode.INTEGRATION_KEY_MISSING, ErrorCode.INTEGRATION_AUTH_FAILED}


@dataclass
class RefreshTarget:
    instrument: Instrument
    timeframe: str
    source: str
    bot_by_tenant: dict[int, int] = field(default_factory=dict)  # one running bot per tenant, for the usage event


@dataclass
class RefreshOutcome:
    symbol: str
    timeframe: str
    source: str
    status: str  # ingested | current | unmapped | no_key | failed
    inserted: int = 0
    tenant_id: int | None = None
    error_code: str = ""
    message: str = ""


def floor_to_grid(at: datetime, timeframe: str) -> datetime:
    seconds = int(timeframe_delta(timeframe).total_seconds())
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def refresh_targets(*, timeframe: str) -> list[RefreshTarget]:
    """Every (instrument, provider) some active tenant's RUNNING live-mode bot uses on ``timeframe``, with one bot
    per tenant (lowest id). Replay runners read stored history and are left out."""
    targets: dict[tuple[str, str], RefreshTarget] = {}
    for tenant_id in active_tenant_ids():
        with tenancy.tenant_context(tenant_id), transaction.atomic():
            rows = (
                Runner.objects.filter(
                    status=Runner.Status.RUNNING,
                    mode=Runner.Mode.LIVE,
                    bot__timeframe=timeframe,
                    bot__data_source__in=PROVIDER_SOURCES,
                )
                .order_by("bot_id")
                .values_list("bot_id", "bot__instruments", "bot__data_source")
            )
            for bot_id, symbols, source in rows:
                for symbol in symbols:
                    target = targets.setdefault((symbol, source), RefreshTarget(None, timeframe, source))
                    target.bot_by_tenant.setdefault(tenant_id, bot_id)
    instruments = Instrument.objects.in_bulk([symbol for symbol, _ in targets], field_name="symbol")
    found = []
    for (symbol, source), target in sorted(targets.items()):
        if symbol in instruments:
            target.instrument = instruments[symbol]
            found.append(target)
    return found


def refresh_bars(*, timeframe: str, now: datetime | None = None) -> list[RefreshOutcome]:
    """One refresh round for ``timeframe``; every target is tried whatever happened to the others."""
    end = floor_to_grid(now or timezone.now(), timeframe)
    outcomes = []
    for target in refresh_targets(timeframe=timeframe):
        try:
            outcome = refresh_target(target, end=end)
        except Exception:  # one instrument's surprise must not starve the others of their bars
            logger.exception(
                "market data: refresh of %s %s from %s failed", target.instrument.symbol, timeframe, target.source
            )
            outcome = RefreshOutcome(
                target.instrument.symbol, timeframe, target.source, "failed", message="unexpected error (see the log)"
            )
        outcomes.append(outcome)
    return outcomes


def refresh_target(target: RefreshTarget, *, end: datetime) -> RefreshOutcome:
    instrument, timeframe, source = target.instrument, target.timeframe, target.source
    outcome = RefreshOutcome(instrument.symbol, timeframe, source, "current")
    mapping = (instrument.data_symbols or {}).get(source)
    if not mapping:
        message, fix = unmapped_message(instrument.symbol, source)
        logger.error("market data: %s %s", message, fix)
        outcome.status, outcome.error_code, outcome.message = "unmapped", "DATA_UNAVAILABLE", f"{message} {fix}"
        return outcome
    step = timeframe_delta(timeframe)
    window_start = end - step * settings.MARKET_DATA_WARMUP_BARS
    latest = Bar.objects.filter(instrument=instrument, timeframe=timeframe).aggregate(latest=Max("ts"))["latest"]
    start = max(latest + step, window_start) if latest else window_start
    if start >= end:
        return outcome
    bars, tenant_id, error = _fetch_with_some_tenants_key(target, mapping, start, end)
    outcome.tenant_id = tenant_id
    if error is not None:
        outcome.status = "no_key" if error.code == ErrorCode.INTEGRATION_KEY_MISSING and tenant_id is None else "failed"
        outcome.error_code, outcome.message = str(error.code), error.message
        logger.warning(
            "market data: no %s bars for %s %s: %s (%s)",
            source,
            instrument.symbol,
            timeframe,
            error.message,
            error.code,
        )
        return outcome
    result = bars_ingest(
        instrument=instrument,
        timeframe=timeframe,
        rows=bars,
        source=source,
        actor_name="market-data-refresh",
        origin=f"{source}:{start.isoformat()}/{end.isoformat()}",
    )
    outcome.status, outcome.inserted = "ingested", result.inserted
    return outcome


def _fetch_with_some_tenants_key(
    target: RefreshTarget, mapping: dict, start: datetime, end: datetime
) -> tuple[list[ProviderBar], int | None, IntegrationError | None]:
    """Bars from the first tenant whose key works; a provider failure (not a key problem) ends the round, since
    another key would meet the same provider."""
    spec = get_provider(target.source)
    error: IntegrationError | None = None
    tried: int | None = None
    for tenant_id, bot_id in sorted(target.bot_by_tenant.items()):
        with tenancy.tenant_context(tenant_id):
            with transaction.atomic():  # credentials are tenant-owned: read them inside a transaction (RLS)
                if credentials.missing_env_vars(spec):
                    continue
                client = client_for(target.source, bot_id=bot_id)
            tried = tenant_id
            try:
                return _fetch(client, target, mapping, start, end), tenant_id, None
            except IntegrationError as exc:
                error = exc
                if exc.code not in _KEY_PROBLEMS:
                    return [], tenant_id, exc
    if error is None:
        error = IntegrationError(
            ErrorCode.INTEGRATION_KEY_MISSING,
            f"No tenant running {target.source} bots on {target.instrument.symbol} has a {target.source} key.",
            provider=target.source,
        )
    return [], tried, error


def _fetch(client, target: RefreshTarget, mapping: dict, start: datetime, end: datetime) -> list[ProviderBar]:
    if target.source == Bar.Source.POLYGON:
        return client.fetch_bars(ticker=mapping["ticker"], timeframe=target.timeframe, start=start, end=end)
    native = target.timeframe in DATABENTO_SCHEMAS
    bars = client.fetch_bars(
        dataset=mapping["dataset"],
        symbol=mapping["symbol"],
        stype_in=mapping.get("stype_in", "raw_symbol"),
        timeframe=target.timeframe if native else "1m",
        start=start,
        end=end,
    )
    return bars if native else resample(bars, timeframe=target.timeframe, start=start, end=end)


def resample(bars: list[ProviderBar], *, timeframe: str, start: datetime, end: datetime) -> list[ProviderBar]:
    """Bars of ``timeframe`` from finer ones: first open, highest high, lowest low, last close, summed volume, one
    per bucket that has any bar. ``start`` and ``end`` are on the ``timeframe`` grid, so every bucket is whole."""
    buckets: dict[datetime, list[ProviderBar]] = {}
    for bar in sorted(bars, key=lambda b: b.ts):
        if start <= bar.ts < end:
            buckets.setdefault(floor_to_grid(bar.ts, timeframe), []).append(bar)
    return [
        ProviderBar(
            ts,
            group[0].open,
            max(b.high for b in group),
            min(b.low for b in group),
            group[-1].close,
            sum((b.volume for b in group), start=0 * group[0].volume),
            where=f"{timeframe} bucket {ts:%Y-%m-%dT%H:%M}Z",
        )
        for ts, group in sorted(buckets.items())
    ]


def outcomes_as_dicts(outcomes: list[RefreshOutcome]) -> list[dict]:
    return [asdict(outcome) for outcome in outcomes]
