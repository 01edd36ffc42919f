"""Replay a scanner bot over recorded quotes: the same ``scan_tenant`` at each point of the scan grid in a past
range, reading ``usable_quotes`` as of that point (what a live scan saw then), its intents sent through the OMS to
the sim twins and filled there against the recorded quotes, as a PAPER bot's live scans are. So a replay of the
quotes a live paper scanner saw gives the same intents (tests/execution/test_arb_scanner.py holds it).

Traces are written with context ``replay`` and the run's reference (a replay runner's id), intents with source
``replay`` and a key prefixed by the run, so a replay never collides with, fills or settles the live timeline.
The inventory a replay starts from is the tenant's paper book as it is now."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from bots.models import Bot
from execution.arbitrage.funding_scan import replay_funding_settle
from execution.arbitrage.pnl import settle_finished_intents
from execution.arbitrage.scanner import ScanTotals, scan_as_of, scan_tenant
from execution.orders.oms import process_pending_intents
from traces.models import TickTrace


def replay_scans(
    *,
    bot: Bot,
    start: datetime,
    end: datetime,
    run_ref: int,
    step_seconds: float | None = None,
    into: ScanTotals | None = None,
) -> ScanTotals:
    """Scan ``bot`` at every grid point of [start, end] (``step_seconds``, default ARB_SCAN_INTERVAL_SECONDS), in
    the current tenant's context; returns the totals (``intent_ids`` in order)."""
    step = step_seconds or settings.ARB_SCAN_INTERVAL_SECONDS
    totals = into if into is not None else ScanTotals()
    as_of = scan_as_of(start, step)
    if as_of < start:
        as_of += timedelta(seconds=step)
    while as_of <= end:
        scan_tenant(as_of=as_of, bots=[bot], context=TickTrace.Context.REPLAY, run_ref=run_ref, totals=totals)
        process_pending_intents()
        as_of += timedelta(seconds=step)
    settle_finished_intents(bot_id=bot.id)
    replay_funding_settle(bot=bot, run_ref=run_ref, as_of=end)  # a funding scanner's payments, as of the replay's end
    return totals


def replay_runner_scans(*, runner_id: int) -> dict | None:
    """A replay runner of a scanner bot over its date range (``execution.replay_runner``); None when the runner's
    bot is not a scanner (the bar replay serves it). Stops early, like the bar replay, once the runner is no longer
    RUNNING (stopped, or its bot killed)."""
    from bots.models import Runner
    from bots.strategies import get_strategy, is_quote_strategy

    runner = Runner.objects.select_related("bot").get(pk=runner_id)
    if not is_quote_strategy(get_strategy(runner.bot.strategy)):
        return None
    step = settings.ARB_SCAN_INTERVAL_SECONDS
    start = runner.replay_cursor + timedelta(seconds=step) if runner.replay_cursor else runner.replay_start
    totals = ScanTotals()
    as_of = start
    while as_of <= runner.replay_end:
        chunk_end = min(as_of + timedelta(seconds=step * 100), runner.replay_end)
        replay_scans(bot=runner.bot, start=as_of, end=chunk_end, run_ref=runner.id, step_seconds=step, into=totals)
        if not Runner.objects.filter(pk=runner.id, status=Runner.Status.RUNNING).update(replay_cursor=chunk_end):
            break
        as_of = chunk_end + timedelta(seconds=step)
    return totals.as_dict()
