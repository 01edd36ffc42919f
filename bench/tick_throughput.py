"""Tick throughput through the real pipeline: bars → calendar → strategy → risk → intent/trace → OMS hand-off.

Creates N bots (default 1,000) on 20 instruments of a fresh bench tenant, on the sim venue, with generated 1m bars
stored in Postgres, then runs T tick rounds (each: one batch per instrument, run in tasks of up to
TICK_BATCH_INSTRUMENTS instruments as beat dispatches them) with every trace persisted, and prints bot-ticks per
second and p50/p99 per task. It also prints the rate of a plain psycopg COPY of
the same number of trace-sized rows on the same database, so the tick rate reads as a share of that ceiling.

    DATABASE_URL=... DATABASE_OWNER_URL=... REDIS_URL=... .venv/bin/python bench/tick_throughput.py [--bots 1000]
        [--instruments 20] [--ticks 5]

The database must be migrated (python manage.py migrate). Round 1 is the entry: the bots whose strategy wants a
position on these bars (334 of 1,000) create one intent each, and the OMS sends them in the same process (as the
tick command does); round 2 is the sim venue filling those orders on the next bar (fills, positions, PnL, intent
status). Both costs are in those rounds' figures. From round 3 on is the steady state the target is about: every
bot decides and gets its trace, none changes its position. The summary line gives the median and worst
steady-state round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from bots.models import Bot, Runner  # noqa: E402
from bots.strategies import get_strategy  # noqa: E402
from controlplane import tenancy  # noqa: E402
from controlplane.models import Tenant  # noqa: E402
from execution.marketdata.barfiles import BarRow  # noqa: E402
from execution.models import Instrument  # noqa: E402
from execution.marketdata.services import bars_ingest  # noqa: E402
from execution.tick.batches import run_tick_batches, task_groups  # noqa: E402


def _today_start() -> datetime:
    """Bars of today (UTC), as a live tick's are: a tick of a day already over also re-summarizes that day's
    traces (``traces.writer``: late traces), a query per batch the live steady state never runs. Three hours back
    from now, or today's midnight if that is later; 24/7 instruments, so any hour of the day is open."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return max(now.replace(hour=0, minute=0), now - timedelta(hours=3))


START = _today_start()
MINUTE = timedelta(minutes=1)
WARMUP_BARS = 40
STRATEGIES = [
    ("ma_crossover", {"fast": 5, "slow": 20, "size": 1}),
    ("donchian_breakout", {"entry_lookback": 20, "exit_lookback": 10, "size": 1}),
    ("zscore_mean_reversion", {"lookback": 20, "entry_z": 1.0, "exit_z": 0.2, "size": 1}),
]


def make_instruments(count: int, bars: int, run: str) -> list[Instrument]:
    """Fresh instruments per run, so bots of earlier runs (still RUNNING in their tenants) are not ticked too."""
    instruments = []
    for i in range(count):
        instrument, _ = Instrument.objects.get_or_create(
            symbol=f"B{run}-{i:02d}",
            defaults={
                "venue": "BENCH",
                "asset_class": "crypto",
                "tick_size": Decimal("0.01"),
                "multiplier": Decimal("1"),
                "calendar": "24/7",
            },
        )
        rows = []
        for b in range(bars):
            price = Decimal(100 + i) + Decimal(b) * Decimal("0.25")  # a steady trend: bots reach target, then hold
            rows.append(
                BarRow(
                    START + b * MINUTE,
                    price,
                    price + 1,
                    price - 1,
                    price + Decimal("0.5"),
                    Decimal(1000 + b),
                    where=f"row {b}",
                )
            )
        bars_ingest(instrument=instrument, timeframe="1m", rows=rows, source="imported", actor_name="bench")
        instruments.append(instrument)
    return instruments


def make_bots(tenant: Tenant, instruments: list[Instrument], count: int) -> None:
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        bots = []
        for n in range(count):
            name, params = STRATEGIES[n % len(STRATEGIES)]
            strategy = get_strategy(name)
            clean = strategy.validate(params)
            bots.append(
                Bot(
                    tenant=tenant,
                    name=f"bench-{n}",
                    strategy=name,
                    parameters=clean,
                    parameters_hash=strategy.parameters_hash(clean),
                    instruments=[instruments[n % len(instruments)].symbol],
                    timeframe="1m",
                )
            )
        Bot.objects.bulk_create(bots, batch_size=1000)
        Runner.objects.bulk_create(
            [
                Runner(
                    tenant=tenant,
                    bot=bot,
                    status=Runner.Status.RUNNING,
                    started_by="bench",
                    started_at=START,
                    trace_id="bench",
                )
                for bot in Bot.objects.all()
            ],
            batch_size=1000,
        )


def refresh_planner_statistics() -> None:
    """What autovacuum does within a minute of a bulk load: without it the planner sees the thousand new bots as
    none and picks plans no running system would. Runs as the owner role (only a table's owner may ANALYZE it)."""
    with connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE bots_bot, bots_runner, execution_bar, execution_instrument")


def copy_ceiling(rows: int) -> float:
    """psycopg COPY of trace-sized rows (same JSON payload shape) into a temp table: the write ceiling."""
    payload = '{"as_of": "2026-11-02T14:40:00+00:00", "close": 123.45, "position": 1.0, "bars": 41}'
    signal = '{"target": 1.0, "reason": "LONG", "fast_ma": 123.1, "slow_ma": 122.9}'
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy (kind text, bot_id bigint, instrument text, bar_ts timestamptz,"
            " reason_code text, details jsonb, inputs jsonb, signal jsonb) ON COMMIT DROP"
        )
        started = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for n in range(rows):
                copy.write_row(("no_trade", n, "BENCH-00", START, "ALREADY_AT_TARGET", "{}", payload, signal))
        return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--instruments", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()

    setup_started = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    tenant = Tenant.objects.create(slug=f"bench-{run}", name="Tick benchmark")
    instruments = make_instruments(args.instruments, WARMUP_BARS + args.ticks + 1, run)
    make_bots(tenant, instruments, args.bots)
    refresh_planner_statistics()
    print(
        f"setup: {args.bots} bots on {args.instruments} instruments, {WARMUP_BARS + args.ticks + 1} bars each "
        f"({time.perf_counter() - setup_started:.1f}s)"
    )

    groups = task_groups({instrument: [tenant.id] for instrument in instruments})
    print(f"dispatch: {len(groups)} task(s) a round of up to {settings.TICK_BATCH_INSTRUMENTS} instruments each")
    steady_rates = []
    for round_no in range(args.ticks):
        as_of = START + (WARMUP_BARS + round_no) * MINUTE
        batch_ms, bot_ticks, intents = [], 0, 0
        round_started = time.perf_counter()
        for group, tenant_ids in groups:  # as beat's dispatcher sends them: one task per group of instruments
            started = time.perf_counter()
            results = run_tick_batches(
                instruments=group, timeframe="1m", as_of=as_of, sync_oms=True, tenant_ids=tenant_ids
            )
            batch_ms.append((time.perf_counter() - started) * 1000)
            bot_ticks += sum(result.bots for result in results)
            intents += sum(result.intents_created for result in results)
        elapsed = time.perf_counter() - round_started
        batch_ms.sort()
        p99 = batch_ms[min(len(batch_ms) - 1, int(len(batch_ms) * 0.99))]
        if round_no >= 2:
            steady_rates.append(bot_ticks / elapsed)
        print(
            f"round {round_no + 1}: {bot_ticks / elapsed:,.0f} bot-ticks/s ({bot_ticks} bot-ticks, {intents} "
            f"intents sent through the OMS, {elapsed:.3f}s); per task p50 {statistics.median(batch_ms):.1f} ms, "
            f"p99 {p99:.1f} ms"
        )

    if steady_rates:
        print(
            f"steady state (rounds 3-{args.ticks}: every bot decides and is traced, none trades): median "
            f"{statistics.median(steady_rates):,.0f} bot-ticks/s, worst {min(steady_rates):,.0f}"
        )
    ceiling = copy_ceiling(args.bots * 5)
    print(f"COPY ceiling on this database: {ceiling:,.0f} rows/s")
    if steady_rates:
        share = statistics.median(steady_rates) / ceiling
        print(
            f"steady state / COPY ceiling = {share:.1%} (target >= 10%: {'met' if share >= 0.10 else 'NOT met'}); "
            f"load average {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
