"""OMS throughput: intents submitted through the service, sent by real Celery OMS workers, filled by the sim venue.

Creates a fresh bench tenant with B bots (default 1,000) on I instruments (default 20) of the sim venue, starts W
Celery workers on the ``oms`` queue as subprocesses (as ``tests/processes.py`` does), then S submitter threads
(each with its own database connection) submit N intents (default 10,000; 80% one leg, 20% two legs on two
instruments) through ``execution.orders.intents.submit_intent`` with ``source="api"``, which asks for an OMS run on
commit exactly as ``POST /api/intents`` does (or, with ``--batch K``, K at a time through
``execution.orders.intent_batches.submit_intents``, one run request per batch). Meanwhile a feeder stores the next 1m bar of every instrument back to
back (``bars_ingest``, whose hook fills the working sim orders): the bar an order fills on arrives as soon as the
previous matching round is done, so the fill latency is the OMS's and the sim venue's, not a wait for a real
minute.

    DATABASE_URL=... DATABASE_OWNER_URL=... REDIS_URL=... .venv/bin/python bench/oms_throughput.py [--intents 10000]
        [--bots 1000] [--instruments 20] [--workers 2] [--concurrency 1] [--submitters 4] [--batch 1] [--rate R]

The database must be migrated. It uses the ``oms`` queue of REDIS_URL's database: use your own (``testenv.sh N``).

It prints: the submission rate; intents per second from the first intent's creation to the last one's terminal
state (FILLED, REJECTED, FAILED, CANCELLED); p50 and p99 from an intent's creation to its orders sent (the audited
move to WORKING, written once the venue acknowledged every leg) and to its fill (the move to FILLED); each target
(>= 1,000 intents/s; p50 intent -> order sent <= 50 ms) met or NOT met; and the COPY ceiling of the same database
(``tick_throughput.copy_ceiling``), with the throughput as a share of it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connections, transaction  # noqa: E402

from bots.models import Bot  # noqa: E402
from controlplane import tenancy  # noqa: E402
from controlplane.celery import app as celery_app  # noqa: E402
from controlplane.models import AuditEvent, Tenant  # noqa: E402
from execution.marketdata.barfiles import BarRow  # noqa: E402
from execution.marketdata.services import bars_ingest  # noqa: E402
from execution.models import Instrument, TradeIntent  # noqa: E402
from execution.orders.intent_batches import IntentRequest, submit_intents  # noqa: E402
from execution.orders.intents import LegSpec, submit_intent  # noqa: E402
from execution.orders.tasks import oms_process  # noqa: E402
from tick_throughput import copy_ceiling  # noqa: E402

START = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
WARMUP_BARS = 3
DECISION_BAR = START + (WARMUP_BARS - 1) * MINUTE
TERMINAL = (
    TradeIntent.Status.FILLED,
    TradeIntent.Status.REJECTED,
    TradeIntent.Status.FAILED,
    TradeIntent.Status.CANCELLED,
)
TARGET_INTENTS_PER_SECOND = 1000
TARGET_P50_SENT_MS = 50


def bar(ts: datetime) -> BarRow:
    price = Decimal(100)
    return BarRow(ts, price, price + 1, price - 1, price, Decimal(10**9), where=ts.isoformat())


def make_instruments(count: int, run: str) -> list[Instrument]:
    instruments = []
    for i in range(count):
        instrument = Instrument.objects.create(
            symbol=f"O{run}-{i:02d}",
            venue="BENCH",
            asset_class="crypto",
            tick_size=Decimal("0.01"),
            multiplier=Decimal(1),
            calendar="24/7",
        )
        rows = [bar(START + b * MINUTE) for b in range(WARMUP_BARS)]
        bars_ingest(instrument=instrument, timeframe="1m", rows=rows, source="imported", actor_name="bench")
        instruments.append(instrument)
    return instruments


def make_bots(tenant: Tenant, count: int) -> list[Bot]:
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Bot.objects.bulk_create(
            [
                Bot(tenant=tenant, name=f"oms-bench-{n}", strategy="ma_crossover", parameters={}, timeframe="1m")
                for n in range(count)
            ],
            batch_size=1000,
        )
        bots = list(Bot.objects.order_by("id"))
    with connections["owner"].cursor() as cursor:  # what autovacuum does soon after a bulk load
        cursor.execute("ANALYZE bots_bot, execution_bar, execution_instrument")
    return bots


def plan(count: int, bots: list[Bot], instruments: list[Instrument]) -> list[tuple[Bot, list[LegSpec], str]]:
    """Intent n: bot n mod B; one in five has a second leg on the next instrument, the other way."""
    intents = []
    for n in range(count):
        first = instruments[n % len(instruments)]
        side = "buy" if (n // len(instruments)) % 2 == 0 else "sell"
        legs = [LegSpec("sim", first.symbol, side, Decimal(1))]
        if n % 5 == 0:
            second = instruments[(n + 1) % len(instruments)]
            legs.append(LegSpec("sim", second.symbol, "sell" if side == "buy" else "buy", Decimal(1)))
        intents.append((bots[n % len(bots)], legs, f"oms-bench-{n}"))
    return intents


def start_workers(count: int, concurrency: int, run: str, log_dir: Path) -> list[subprocess.Popen]:
    workers = []
    for i in range(count):
        log = open(log_dir / f"oms-worker-{i}.log", "wb")
        workers.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "celery"),
                    "-A",
                    "controlplane",
                    "worker",
                    "-Q",
                    "oms",
                    "--pool",
                    "prefork",
                    "-c",
                    str(concurrency),
                    "-n",
                    f"oms-bench-{run}-{i}@%h",
                    "-l",
                    "WARNING",
                ],
                cwd=ROOT,
                env=dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        replies = celery_app.control.ping(timeout=1.0) or []
        if sum(1 for reply in replies for name in reply if name.startswith(f"oms-bench-{run}-")) == count:
            return workers
    stop_workers(workers)
    raise SystemExit(f"the OMS workers did not start; see {log_dir}/oms-worker-*.log")


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def submit_all(
    tenant: Tenant, work: list, submitters: int, source: str = "api", batch: int = 1, rate: float | None = None
) -> list[BaseException]:
    """Each submitter submits its share one intent at a time (``submit_intent``), or ``batch`` at a time
    (``submit_intents``, one transaction each). With ``rate``, the submissions are paced: together the submitters
    offer ``rate`` intents a second, evenly (submission j of submitter i starts at (j * submitters + i) * batch /
    rate seconds, or as soon as the one before it returns if that is later)."""
    errors: list[BaseException] = []
    step = max(batch, 1)
    t0 = time.monotonic()

    def pace(index: int, number: int) -> None:
        if rate:
            due = t0 + (number * submitters + index) * step / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())

    def submitter(index, share):
        try:
            with tenancy.tenant_context(tenant.id):
                if batch > 1:
                    for number, start in enumerate(range(0, len(share), batch)):
                        pace(index, number)
                        requests = [
                            IntentRequest(bot=bot, legs=legs, idempotency_key=key, bar_ts=DECISION_BAR)
                            for bot, legs, key in share[start : start + batch]
                        ]
                        submit_intents(requests, source=source, actor_name="bench")
                    return
                for number, (bot, legs, key) in enumerate(share):
                    pace(index, number)
                    submit_intent(
                        bot=bot, legs=legs, idempotency_key=key, source=source, bar_ts=DECISION_BAR, actor_name="bench"
                    )
        except BaseException as error:  # reported by the caller
            errors.append(error)
        finally:
            connections.close_all()

    # Submitter i takes submissions i, i + submitters, ... (of ``batch`` intents each), so paced submissions
    # interleave in the plan's order.
    chunks = [work[start : start + step] for start in range(0, len(work), step)]
    shares = [[item for chunk in chunks[i::submitters] for item in chunk] for i in range(submitters)]
    threads = [threading.Thread(target=submitter, args=(i, shares[i])) for i in range(submitters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def feed_bars(instrument_ids: list[int], interval: float, stop, ready) -> None:
    """A feeder process: the next bar of each of these instruments, a round every ``interval`` seconds (from one
    round's start to the next; back to back when a round takes longer), until told to stop.

    Each feeder is a process of its own, as a provider's refresh task runs on a worker: the fills its bars book
    (``bars_ingest``'s hook) take its CPU, not a thread's share of the submitters' interpreter lock. A bar's
    storing and matching cost the same whatever it fills, so the interval sets how much of the machine the sim
    venue's bars take: a real venue's 1m bar comes once a minute, here every ``interval``."""
    instruments = list(Instrument.objects.filter(id__in=instrument_ids).order_by("id"))
    ts = DECISION_BAR
    ready.put(len(instruments))
    try:
        while not stop.is_set():
            started = time.monotonic()
            ts += MINUTE
            for instrument in instruments:
                bars_ingest(
                    instrument=instrument, timeframe="1m", rows=[bar(ts)], source="imported", actor_name="bench"
                )
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    finally:
        connections.close_all()


def start_feeders(instruments: list[Instrument], count: int, interval: float):
    """``count`` feeder processes (spawned: each sets Django up itself), instrument k to feeder k mod count; returns
    once every one is ready to store its first bar."""
    context = multiprocessing.get_context("spawn")
    stop, ready = context.Event(), context.Queue()
    feeders = [
        context.Process(
            target=feed_bars, args=([i.id for i in instruments[k::count]], interval, stop, ready), daemon=True
        )
        for k in range(count)
    ]
    for feeder in feeders:
        feeder.start()
    for _ in feeders:
        ready.get(timeout=120)
    return stop, feeders


def terminal_count(tenant: Tenant) -> int:
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        return TradeIntent.objects.filter(status__in=TERMINAL).count()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def report_latencies(tenant: Tenant, intents: int, since: datetime | None = None) -> tuple[float, float | None]:
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        created = dict(TradeIntent.objects.values_list("id", "created_at"))
        statuses = dict(TradeIntent.objects.values_list("id", "status"))
        moves: dict[str, dict[int, datetime]] = {"ACCEPTED": {}, "WORKING": {}, "FILLED": {}, "terminal": {}}
        for resource_id, after, at in AuditEvent.objects.filter(
            action="intent.status", resource_type="intent"
        ).values_list("resource_id", "after_state", "created_at"):
            status = after.get("status")
            if status in moves:
                moves[status][int(resource_id)] = at
            if status in TERMINAL:
                moves["terminal"][int(resource_id)] = at
    first, last_created = min(created.values()), max(created.values())
    print(
        f"submitted {len(created):,} intents through the service in {(last_created - first).total_seconds():.1f}s "
        f"({len(created) / max((last_created - first).total_seconds(), 1e-9):,.0f}/s)"
    )
    by_status: dict[str, int] = {}
    for status in statuses.values():
        by_status[status] = by_status.get(status, 0) + 1
    print("final states: " + ", ".join(f"{status} {count:,}" for status, count in sorted(by_status.items())))
    if since is not None:  # a backlog: the clock starts when the workers are told, not at creation
        first = since
    done = moves["terminal"]
    span = (max(done.values()) - first).total_seconds()
    rate = len(done) / span
    print(f"{len(done):,} of {intents:,} intents reached a terminal state in {span:.1f}s: {rate:,.0f} intents/s")
    sent_at = sorted(moves["WORKING"].values())
    if len(sent_at) > 1:
        window = (sent_at[-1] - sent_at[0]).total_seconds()
        print(
            f"OMS sending: {len(sent_at):,} intents moved to WORKING in {window:.1f}s between the first and the last "
            f"({len(sent_at) / max(window, 1e-9):,.0f}/s; bounded by the submission rate when the OMS keeps up)"
        )
    p50_sent = None
    if since is not None:
        print("latencies from creation: not measured in --backlog mode (they would be the backlog's queueing)")
        return rate, None
    # Where the time to "sent" goes: creation -> claimed and re-checked by the OMS (ACCEPTED: the submission's own
    # commit, the wait for a run, the claim and the batch's risk checks), then -> sent (the venue calls, recorded).
    stages = [(at - created[i]).total_seconds() * 1000 for i, at in moves["ACCEPTED"].items() if i in moves["WORKING"]]
    if stages:
        sends = [
            (moves["WORKING"][i] - at).total_seconds() * 1000
            for i, at in moves["ACCEPTED"].items()
            if i in moves["WORKING"]
        ]
        print(
            f"stages: creation -> ACCEPTED p50 {statistics.median(stages):,.0f} ms, ACCEPTED -> WORKING (sent) p50 "
            f"{statistics.median(sends):,.0f} ms"
        )
    for label, key in (("order sent", "WORKING"), ("fill", "FILLED")):
        ms = [(at - created[i]).total_seconds() * 1000 for i, at in moves[key].items()]
        if not ms:
            print(f"intent -> {label}: no intent got there (unknown)")
            continue
        p50 = statistics.median(ms)
        p50_sent = p50 if key == "WORKING" else p50_sent
        print(f"intent -> {label}: p50 {p50:,.0f} ms, p99 {percentile(ms, 0.99):,.0f} ms ({len(ms):,} intents)")
    return rate, p50_sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=10_000)
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--instruments", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument(
        "--feeders", type=int, default=2, help="bar feeder processes (each stores the bars of its share of instruments)"
    )
    parser.add_argument(
        "--bar-interval",
        type=float,
        default=0.25,
        help="seconds from one round of bars (one per instrument) to the next; 0: back to back",
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--batch", type=int, default=1, help="intents per submission (submit_intents) per submitter; 1: submit_intent"
    )
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="submit every intent first (nothing enqueued), then hand the backlog to the workers: the OMS's own rate",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="offered load: submit R intents/s evenly (the latencies at a load the OMS sustains, not behind a backlog)",
    )
    args = parser.parse_args()

    setup_started = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    tenant = Tenant.objects.create(slug=f"oms-bench-{run}", name="OMS benchmark")
    instruments = make_instruments(args.instruments, run)
    bots = make_bots(tenant, args.bots)
    work = plan(args.intents, bots, instruments)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("oms")  # this database's own queue: nothing of an earlier run is replayed
    log_dir = Path(os.environ.get("BENCH_LOG_DIR", "/tmp"))
    if args.backlog:
        errors = submit_all(tenant, work, args.submitters, source="tick", batch=args.batch)
        if errors:
            raise SystemExit(f"submission failed: {errors[0]!r}")
    workers = start_workers(args.workers, args.concurrency, run, log_dir)
    print(
        f"setup: {args.bots} bots, {args.instruments} instruments, {args.workers} OMS workers x {args.concurrency} "
        f"(OMS_BATCH_SIZE {settings.OMS_BATCH_SIZE}), {args.feeders} bar feeder processes "
        f"(a round every {args.bar_interval:g}s), {args.submitters} submitters "
        f"({'one intent' if args.batch <= 1 else f'{args.batch} intents'} a submission"
        f"{'' if not args.rate else f', offered at {args.rate:,.0f} intents/s'}) "
        f"({time.perf_counter() - setup_started:.1f}s)"
    )
    connections.close_all()  # nothing of this process's connections is shared with a spawned feeder
    stop, feeders = start_feeders(instruments, args.feeders, args.bar_interval)
    try:
        started, told_at = time.monotonic(), None
        if args.backlog:
            told_at = datetime.now(UTC)
            for _ in range(args.workers * args.concurrency):
                oms_process.apply_async(kwargs={"tenant_id": tenant.id, "limit": args.intents}, queue="oms")
        else:
            errors = submit_all(tenant, work, args.submitters, batch=args.batch, rate=args.rate)
            if errors:
                raise SystemExit(f"submission failed: {errors[0]!r}")
        while terminal_count(tenant) < args.intents:
            if time.monotonic() - started > args.timeout:
                print(f"timed out after {args.timeout:.0f}s: {terminal_count(tenant):,} terminal")
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for feeder in feeders:
            feeder.join(timeout=60)
        stop_workers(workers)
        connections.close_all()

    rate, p50_sent = report_latencies(tenant, args.intents, since=told_at)
    ceiling = copy_ceiling(args.intents * 5)
    print(f"COPY ceiling on this database: {ceiling:,.0f} rows/s; intents/s is {rate / ceiling:.2%} of it")
    print(
        f"target >= {TARGET_INTENTS_PER_SECOND:,} intents/s: {'met' if rate >= TARGET_INTENTS_PER_SECOND else 'NOT met'}"
        f" ({rate:,.0f})"
    )
    sent = "unknown: not measured" if p50_sent is None else f"{p50_sent:,.0f} ms"
    met = p50_sent is not None and p50_sent <= TARGET_P50_SENT_MS
    print(f"target p50 intent -> order sent <= {TARGET_P50_SENT_MS} ms: {'met' if met else 'NOT met'} ({sent})")


if __name__ == "__main__":
    main()
