"""Thin Celery tasks of the execution layer: parse, call the tick or OMS service. Each is safe to run twice.

The OMS's own tasks are in ``execution.orders.tasks`` (the tick hands intents to them); imported here so that
Celery's autodiscovery, which reads ``execution.tasks``, registers them."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from controlplane.celery import TenantTask
from execution.orders.tasks import (  # noqa: F401 (registered)
    oms_process,
    oms_recover,
    oms_recover_all_tenants,
    oms_sweep_pending,
)
from execution.arbitrage.cash_tasks import sync_live_cash, sync_live_cash_for_tenant  # noqa: F401 (registered)
from execution.arbitrage.funding_tasks import book_funding, book_funding_for_tenant  # noqa: F401 (registered)


@shared_task(name="execution.dispatch_ticks", acks_late=True)
def dispatch_ticks(timeframe: str) -> int:
    """Beat's entry point per timeframe: the tick batches of every instrument some running bot ticks on, up to
    TICK_BATCH_INSTRUMENTS instruments a task (run together: each tenant's bots on them in one transaction).
    Returns the number of instruments."""
    from execution.tick.batches import floor_to_timeframe, instruments_to_tick, task_groups
    from execution.tick.lateness import batch_expires

    as_of = floor_to_timeframe(timezone.now(), timeframe)
    instruments = instruments_to_tick(timeframe=timeframe)
    for group, tenant_ids in task_groups(instruments):
        # A short delay lets the bar that just closed arrive from its provider before the tick reads it; a message
        # still waiting after most of the timeframe is dropped (the batches would only have traced TICK_LATE).
        tick_batch.apply_async(
            kwargs={
                "instrument_ids": [instrument.id for instrument in group],
                "timeframe": timeframe,
                "as_of": as_of.isoformat(),
                "tenant_ids": tenant_ids,
            },
            countdown=settings.TICK_DELAY_SECONDS,
            expires=batch_expires(as_of, timeframe),
            queue="ticks",
        )
    return len(instruments)


@shared_task(name="execution.dispatch_scans", acks_late=True)
def dispatch_scans() -> dict:
    """Beat's entry point for scanner bots (every ARB_SCAN_INTERVAL_SECONDS): one scan of every tenant's running
    scanner bots as of the scan grid point; a re-delivered task finds the scan traced and does nothing."""
    from execution.arbitrage.batches import run_scan_batch
    from execution.arbitrage.scanner import scan_as_of

    return run_scan_batch(as_of=scan_as_of(timezone.now())).as_dict()


@shared_task(name="execution.tick_batch", acks_late=True)
def tick_batch(
    *,
    timeframe: str,
    as_of: str,
    instrument_ids: list[int] | None = None,
    instrument_id: int | None = None,
    tenant_ids: list[int] | None = None,
) -> dict | list[dict]:
    """The batches of ``instrument_ids`` (beat's), or of the one ``instrument_id`` (messages sent before batches
    were grouped; its summary alone), run together. Safe to run twice: a second run for the same bar finds every
    bot already traced and creates nothing. Judged late by the wall clock at its start (TICK_LATE), never by
    ``as_of`` alone."""
    from execution.models import Instrument
    from execution.tick.batches import run_tick_batches

    started_at = timezone.now()
    ids = instrument_ids if instrument_ids is not None else [instrument_id]
    found = Instrument.objects.in_bulk(ids)
    results = run_tick_batches(
        instruments=[found[pk] for pk in ids if pk in found],
        timeframe=timeframe,
        as_of=datetime.fromisoformat(as_of),
        tenant_ids=tenant_ids,
        started_at=started_at,
    )
    summaries = [result.as_dict() for result in results]
    return summaries if instrument_ids is not None else summaries[0]


@shared_task(name="execution.replay_runner", base=TenantTask)
def replay_runner(*, tenant_id: int, runner_id: int) -> dict:
    from bots.services import runner_finish_replay
    from execution.arbitrage.replay import replay_runner_scans
    from execution.tick.replay import run_replay

    totals = replay_runner_scans(runner_id=runner_id)  # None: not a scanner bot
    if totals is None:
        totals = run_replay(runner_id=runner_id)
    runner_finish_replay(runner_id=runner_id, summary=totals)
    return totals


@shared_task(name="execution.drawdown_breakers", acks_late=True, ignore_result=True)
def drawdown_breakers() -> dict:
    """Beat's entry point for the drawdown circuit breaker (every DRAWDOWN_BREAKER_INTERVAL_SECONDS)."""
    from execution.risk.breakers import drawdown_sweep

    return {str(tenant_id): counts for tenant_id, counts in drawdown_sweep().items()}


@shared_task(name="execution.refresh_market_data", acks_late=True)
def refresh_market_data(timeframe: str) -> list[dict]:
    """Beat's entry point per timeframe, at the bar boundary: fetch and store the bars that just closed for every
    instrument a running bot reads from Databento or Polygon, before the tick batches (TICK_DELAY_SECONDS later)."""
    from execution.marketdata.refresh import outcomes_as_dicts, refresh_bars

    return outcomes_as_dicts(refresh_bars(timeframe=timeframe))


@shared_task(name="execution.maintain_quote_partitions")
def maintain_quote_partitions() -> dict:
    from execution.marketdata.quote_store import quote_partitions_maintain

    return quote_partitions_maintain().as_dict()


@shared_task(name="execution.downsample_quotes")
def downsample_quotes() -> int:
    from execution.marketdata.quote_store import quote_minutes_downsample

    return quote_minutes_downsample()
