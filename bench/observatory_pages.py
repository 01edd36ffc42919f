"""Render time of the console's pages with a tenant's worth of data: 1,000 bots, 100,000 usage events and
1,000,000 tick traces.

Renders in-process through ``django.test.Client`` as a logged-in superuser who picked the bench tenant in the admin
switcher, so the whole middleware stack runs (trace id, session, auth, the tenant transaction that sets
``app.tenant_id`` for RLS) and every page's template is rendered. Each page is rendered ``--warmups`` times
untimed, then ``--renders`` times timed; it must answer 200 every time or the bench stops.

    DATABASE_URL=... DATABASE_OWNER_URL=... REDIS_URL=... .venv/bin/python bench/observatory_pages.py
        [--renders 30] [--warmups 3] [--bots 1000] [--usage-events 100000] [--traces 1000000] [--reload]
        [--explain 3]

The database must be migrated. Setup is idempotent: the tenant ``bench-observatory`` is kept between runs; its
bots and tick traces are reused when their counts are the ones asked for (else deleted and loaded again, or always
with ``--reload``), and its usage events and verifications are deleted and loaded again on every run, so that "the
last 24 hours" holds about half of them whenever the bench runs. Tick traces and usage events are loaded with COPY
as the owner role: every table of a tenant is under FORCE ROW LEVEL SECURITY, which binds the owner too and makes
Postgres refuse ``COPY FROM`` into it, so rows are copied into a temp table and moved with one INSERT ... SELECT
under the tenant's policy, as traces/writer.py does. The owner runs VACUUM on the tables after the deletes and
VACUUM ANALYZE after the load (what autovacuum would do within a minute).

Pages: the dashboard (``/admin/``) with the system status computed on every render (``cold``: the per-process
status cache forgotten before each render) and served from the cache (``warm``), the dashboard's live panel that
htmx polls, Connections, and the tick-trace and usage-event changelists. Every page but the cold dashboard is
measured with the status cache warm (``STATUS_CACHE_SECONDS`` raised for the bench so that it stays warm however
slow the machine; a real page pays the cold cost once every 5 s per process). The same-run references are a
trivial page through the same stack (``GET /api/health``) and a plain ``SELECT 1`` round trip through Django's
cursor. After the timed renders each page is rendered once more under ``CaptureQueriesContext`` to report its
query count, the time spent in SQL and its slowest query; ``--explain N`` prints EXPLAIN ANALYZE of each page's N
slowest queries, run as the runtime role in the tenant (RLS applies).

Target: p95 <= 300 ms for each page (the cold dashboard included).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bots.models import Bot, Runner, Stage  # noqa: E402
from bots.strategies import get_strategy  # noqa: E402
from controlplane import tenancy  # noqa: E402
from controlplane.models import Tenant  # noqa: E402
from controlplane.selectors import ADMIN_TENANT_SESSION_KEY  # noqa: E402
from controlplane.status import forget_cached_status  # noqa: E402
from execution.models import Instrument, TickBatch  # noqa: E402
from integrations.models import IntegrationVerification  # noqa: E402
from integrations.registry import all_providers  # noqa: E402

TENANT_SLUG = "bench-observatory"
USERNAME = "bench-observatory-admin"
INSTRUMENTS = 20
SYMBOL_PREFIX = "OBS-"
START = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
TARGET_P95_MS = 300.0
STRATEGIES = [
    ("ma_crossover", {"fast": 5, "slow": 20, "size": 1}),
    ("donchian_breakout", {"entry_lookback": 20, "exit_lookback": 10, "size": 1}),
    ("zscore_mean_reversion", {"lookback": 20, "entry_z": 1.0, "exit_z": 0.2, "size": 1}),
]
# Usage events: provider calls of a busy tenant, weighted towards market data and the broker of its live bots.
USAGE_MIX = [
    ("polygon", "GET /v2/aggs", 30),
    ("databento", "timeseries.get_range", 20),
    ("redis", "PING", 15),
    ("coinbase", "ccxt coinbase.create_order", 10),
    ("tradovate", "POST /order/placeorder", 10),
    ("openai", "POST /v1/chat/completions", 8),
    ("twilio", "POST /Messages.json", 4),
    ("kraken", "ccxt kraken.fetch_balance", 3),
]
USAGE_WINDOW = timedelta(hours=48)  # spread evenly over the 48 h before the load: about half in "the last 24 h"
TRACE_INPUTS = '{"as_of": "2026-10-01T00:00:00+00:00", "close": 123.45, "position": 1.0, "bars": 41}'
TRACE_SIGNAL = '{"target": 1.0, "reason": "LONG", "fast_ma": 123.1, "slow_ma": 122.9}'
TRACE_RISK = '[{"check": "max_position", "ok": true}]'


# --- machine and references ------------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
        cursor.execute("SHOW fsync")
        fsync = cursor.fetchone()[0]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return (
        f"{os.cpu_count()} cpus ({model}), Python {platform.python_version()}, Django {django.get_version()}, "
        f"PostgreSQL {pg} (fsync {fsync})"
        + (f"; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else "")
    )


# --- setup -----------------------------------------------------------------------------------------------------


def _owner_in_tenant(tenant_id: int):
    """An owner transaction with the tenant set: FORCE ROW LEVEL SECURITY binds the owner to the policy too."""
    return tenancy.tenant_context(tenant_id), transaction.atomic(using="owner")


def _counts(tenant: Tenant) -> tuple[int, int]:
    from traces.models import TickTrace

    with tenancy.tenant_context(tenant.id), transaction.atomic():
        return Bot.objects.count(), TickTrace.objects.count()


def delete_bots_and_traces(tenant: Tenant) -> None:
    ctx, atomic = _owner_in_tenant(tenant.id)
    with ctx, atomic, connections["owner"].cursor() as cursor:
        cursor.execute("DELETE FROM traces_ticktrace WHERE tenant_id = %s", [tenant.id])
        cursor.execute("DELETE FROM bots_runner WHERE tenant_id = %s", [tenant.id])
        cursor.execute("DELETE FROM bots_bot WHERE tenant_id = %s", [tenant.id])
        cursor.execute("DELETE FROM execution_tickbatch WHERE instrument_symbol LIKE %s", [SYMBOL_PREFIX + "%"])


def delete_usage(tenant: Tenant) -> None:
    ctx, atomic = _owner_in_tenant(tenant.id)
    with ctx, atomic, connections["owner"].cursor() as cursor:
        cursor.execute("DELETE FROM integrations_integrationusageevent WHERE tenant_id = %s", [tenant.id])
        cursor.execute("DELETE FROM integrations_integrationverification WHERE tenant_id = %s", [tenant.id])


def make_instruments() -> list[str]:
    symbols = []
    for i in range(INSTRUMENTS):
        instrument, _ = Instrument.objects.get_or_create(
            symbol=f"{SYMBOL_PREFIX}{i:02d}",
            defaults={
                "venue": "BENCH",
                "asset_class": "crypto",
                "tick_size": Decimal("0.01"),
                "multiplier": Decimal("1"),
                "calendar": "24/7",
            },
        )
        symbols.append(instrument.symbol)
    return symbols


def make_bots(tenant: Tenant, symbols: list[str], count: int) -> list[int]:
    """Bots over every stage and tier (a tenth of them killed), with a running runner for each bot not retired."""
    stages = [Stage.LAB, Stage.BACKTESTED, Stage.PAPER, Stage.PAPER, Stage.LIVE, Stage.RETIRED]
    tiers = list(Bot.AutonomyTier.values)
    now = timezone.now()
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        bots = []
        for n in range(count):
            name, params = STRATEGIES[n % len(STRATEGIES)]
            strategy = get_strategy(name)
            clean = strategy.validate(params)
            killed = n % 10 == 7
            bots.append(
                Bot(
                    tenant=tenant,
                    name=f"obs-{n}",
                    strategy=name,
                    parameters=clean,
                    parameters_hash=strategy.parameters_hash(clean),
                    instruments=[symbols[n % len(symbols)]],
                    timeframe="1m",
                    stage=stages[n % len(stages)],
                    autonomy_tier=tiers[n % len(tiers)],
                    killed=killed,
                    killed_at=now - timedelta(minutes=n) if killed else None,
                    killed_by="bench" if killed else "",
                    kill_reason="bench kill" if killed else "",
                )
            )
        Bot.objects.bulk_create(bots, batch_size=1000)
        ids = list(Bot.objects.order_by("id").values_list("id", flat=True))
        Runner.objects.bulk_create(
            [
                Runner(
                    tenant=tenant,
                    bot_id=bot.id,
                    status=Runner.Status.RUNNING,
                    started_by="bench",
                    started_at=START,
                    last_heartbeat_at=now,
                    last_tick_at=now,
                    trace_id="bench-observatory",
                )
                for bot in Bot.objects.exclude(stage=Stage.RETIRED).only("id")
            ],
            batch_size=1000,
        )
    return ids


def _copy_through_stage(cursor, table: str, columns: tuple[str, ...], types: str, rows, tenant_id: int) -> int:
    """COPY into a temp table, then one INSERT ... SELECT that the tenant's policy checks (see the docstring)."""
    stage = f"_bench_{table}"
    cursor.execute(f"CREATE TEMP TABLE {stage} ({types}) ON COMMIT DROP")
    with cursor.cursor.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO {table} (tenant_id, {', '.join(columns)}) SELECT %s, {', '.join(columns)} FROM {stage}",
        [tenant_id],
    )
    return cursor.rowcount


TRACE_COLUMNS = (
    "kind",
    "context",
    "run_ref",
    "bot_id",
    "instrument",
    "timeframe",
    "bar_ts",
    "reason_code",
    "details",
    "inputs",
    "signal",
    "risk_checks",
    "intent_id",
    "trace_id",
    "created_at",
)
TRACE_TYPES = (
    "kind varchar(16), context varchar(16), run_ref bigint, bot_id bigint, instrument varchar(64), "
    "timeframe varchar(8), bar_ts timestamptz, reason_code varchar(32), details jsonb, inputs jsonb, "
    "signal jsonb, risk_checks jsonb, intent_id bigint, trace_id varchar(64), created_at timestamptz"
)


def load_traces(tenant: Tenant, bot_ids: list[int], symbols: list[str], total: int) -> int:
    """One trace per bot per 1m bar, as the live tick writes them (one trace id per instrument batch): bars advance
    by one minute once every bot has its trace. One in 50 is a decision, the rest no-trade reasons."""
    reasons = ["ALREADY_AT_TARGET"] * 6 + ["NO_SIGNAL"] * 3 + ["RISK_BLOCKED", "COOLDOWN", "DATA_STALE"]
    bots = len(bot_ids)

    def rows():
        for n in range(total):
            bar, b = divmod(n, bots)
            bar_ts = START + bar * MINUTE
            symbol = symbols[b % len(symbols)]
            decision = (n % 50) == 0
            yield (
                "decision" if decision else "no_trade",
                "tick",
                None,
                bot_ids[b],
                symbol,
                "1m",
                bar_ts,
                None if decision else reasons[n % len(reasons)],
                "{}",
                TRACE_INPUTS,
                TRACE_SIGNAL,
                TRACE_RISK,
                None,
                f"bench-tick-{bar:06d}-{b % len(symbols):02d}",
                bar_ts + timedelta(seconds=2),
            )

    ctx, atomic = _owner_in_tenant(tenant.id)
    with ctx, atomic, connections["owner"].cursor() as cursor:
        inserted = _copy_through_stage(cursor, "traces_ticktrace", TRACE_COLUMNS, TRACE_TYPES, rows(), tenant.id)
    # The tick also records one batch per (instrument, bar): the dashboard's "last tick" and status read them.
    bars = -(-total // bots)
    TickBatch.objects.bulk_create(
        [
            TickBatch(
                instrument_symbol=s,
                timeframe="1m",
                as_of=START + bar * MINUTE,
                market_open=True,
                bots=bots // len(symbols),
                decisions=1,
                no_trades=bots // len(symbols) - 1,
                duration_ms=9.0,
                trace_id=f"bench-tick-{bar:06d}-{i:02d}",
            )
            for bar in range(bars)
            for i, s in enumerate(symbols)
        ],
        batch_size=5000,
    )
    return inserted


USAGE_COLUMNS = ("provider", "operation", "status", "error_code", "latency_ms", "bot_id", "trace_id", "created_at")
USAGE_TYPES = (
    "provider varchar(32), operation varchar(64), status varchar(16), error_code varchar(64), "
    "latency_ms integer, bot_id bigint, trace_id varchar(64), created_at timestamptz"
)


def load_usage(tenant: Tenant, bot_ids: list[int], total: int) -> int:
    """Provider calls over the 48 h before now: 95% ok, 4% errors, 1% refused by an open breaker, except Redis, whose
    pings never failed, and Kraken, whose key is broken (every call refused: its verify failed too); 70% by a bot."""
    rng = random.Random(11)
    weighted = [(p, op) for p, op, w in USAGE_MIX for _ in range(w)]
    now = timezone.now()
    step = USAGE_WINDOW / total

    def rows():
        for n in range(total):
            provider, operation = weighted[rng.randrange(len(weighted))]
            roll = 0.0 if provider == "redis" else 0.95 + rng.random() * 0.05 if provider == "kraken" else rng.random()
            status, code = (
                ("ok", "")
                if roll < 0.95
                else ("error", "INTEGRATION_UNREACHABLE")
                if roll < 0.99
                else ("circuit_open", "INTEGRATION_UNREACHABLE")
            )
            bot = bot_ids[rng.randrange(len(bot_ids))] if rng.random() < 0.7 else None
            yield (
                provider,
                operation,
                status,
                code,
                rng.randint(5, 900),
                bot,
                f"bench-use-{n:08d}",
                now - USAGE_WINDOW + n * step,
            )

    ctx, atomic = _owner_in_tenant(tenant.id)
    with ctx, atomic, connections["owner"].cursor() as cursor:
        inserted = _copy_through_stage(
            cursor, "integrations_integrationusageevent", USAGE_COLUMNS, USAGE_TYPES, rows(), tenant.id
        )
    # One recent verify per provider that was used (one failing): the cards' "last verified".
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        IntegrationVerification.objects.bulk_create(
            [
                IntegrationVerification(
                    tenant=tenant,
                    provider=spec.provider,
                    status="failed" if spec.provider == "kraken" else "ok",
                    error_code="INTEGRATION_UNREACHABLE" if spec.provider == "kraken" else "",
                    latency_ms=120,
                    source="environment",
                    trace_id=f"bench-verify-{spec.provider}",
                    verified_at=now - timedelta(minutes=30),
                )
                for spec in all_providers()
            ]
        )
    return inserted


def vacuum(tables: list[str], *, analyze: bool) -> None:
    """As the owner (only a table's owner may), outside a transaction: what autovacuum does after a bulk change.
    Run after the deletes too, so that the new rows take the space of the old ones and repeated runs measure tables
    of the same size, not ones that grow by a copy of the data each time."""
    owner = connections["owner"]
    owner.ensure_connection()
    with owner.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM {'ANALYZE ' if analyze else ''}{table}")


def setup(args) -> tuple[Tenant, User]:
    started = time.perf_counter()
    tenant, _ = Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": "Observatory pages benchmark"})
    symbols = make_instruments()
    bots, traces = _counts(tenant)
    tables = ["integrations_integrationusageevent", "integrations_integrationverification"]
    delete_usage(tenant)
    if args.reload or (bots, traces) != (args.bots, args.traces):
        delete_bots_and_traces(tenant)
        tables += ["traces_ticktrace", "bots_bot", "bots_runner", "execution_tickbatch", "execution_instrument"]
        vacuum(tables, analyze=False)
        bot_ids = make_bots(tenant, symbols, args.bots)
        copy_started = time.perf_counter()
        loaded = load_traces(tenant, bot_ids, symbols, args.traces)
        print(
            f"setup: {args.bots:,} bots and {loaded:,} tick traces loaded "
            f"({loaded / (time.perf_counter() - copy_started):,.0f} traces/s through COPY and INSERT ... SELECT)"
        )
    else:
        vacuum(tables, analyze=False)
        with tenancy.tenant_context(tenant.id), transaction.atomic():
            bot_ids = list(Bot.objects.order_by("id").values_list("id", flat=True))
        print(f"setup: reusing the {bots:,} bots and {traces:,} tick traces of tenant {TENANT_SLUG}")
    usage = load_usage(tenant, bot_ids, args.usage_events)
    vacuum(tables, analyze=True)
    user, created = User.objects.get_or_create(username=USERNAME, defaults={"is_staff": True, "is_superuser": True})
    if created:
        user.set_unusable_password()
        user.save()
    print(
        f"setup: {usage:,} usage events loaded; tenant {TENANT_SLUG} (id {tenant.id}) ready in "
        f"{time.perf_counter() - started:.1f}s"
    )
    return tenant, user


# --- rendering -------------------------------------------------------------------------------------------------


def fail(message: str) -> None:
    """A page that does not answer 200 stops the bench (exit status 2): its figures would mean nothing."""
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(2)


def logged_in_client(tenant: Tenant, user: User) -> Client:
    client = Client()
    client.force_login(user)
    response = client.post("/admin/switch-tenant/", {"tenant_id": tenant.id, "next": "/admin/"})
    if response.status_code != 302 or client.session.get(ADMIN_TENANT_SESSION_KEY) != tenant.id:
        fail(f"switching to tenant {tenant.slug} failed: HTTP {response.status_code}")
    return client


def get_ok(client: Client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        fail(
            f"GET {url} answered HTTP {response.status_code}, not 200:\n"
            f"{response.content[:2000].decode(errors='replace')}"
        )
    return response


def timed(fn, renders: int, warmups: int, before=None) -> list[float]:
    for _ in range(warmups):
        if before:
            before()
        fn()
    times = []
    for _ in range(renders):
        if before:
            before()
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


class QueryTimer:
    """Each statement the runtime connection runs, with its time (perf_counter: CaptureQueriesContext rounds to
    the millisecond, and most of a page's queries take less)."""

    def __init__(self):
        self.queries: list[tuple[float, str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - started) * 1000, sql, params))


def explain(tenant: Tenant, sql: str, params) -> str:
    with tenancy.tenant_context(tenant.id), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join("      " + row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=30)
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--usage-events", type=int, default=100_000)
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--reload", action="store_true", help="delete and load the bots and traces again")
    parser.add_argument(
        "--explain", type=int, default=0, metavar="N", help="EXPLAIN ANALYZE each page's N slowest queries"
    )
    args = parser.parse_args()

    print(f"machine: {machine()}")
    tenant, user = setup(args)
    # Admin pages need no collectstatic manifest here (as in the tests); the manifest lookup is a dict read.
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    pages = [
        ("dashboard, status cold", "/admin/", forget_cached_status),
        ("dashboard, status warm", "/admin/", None),
        ("dashboard live panel (htmx)", "/admin/observatory/dashboard/panel/", None),
        ("connections", "/admin/observatory/connections/", None),
        ("tick trace changelist", "/admin/traces/ticktrace/", None),
        ("usage event changelist", "/admin/integrations/integrationusageevent/", None),
    ]
    with override_settings(STORAGES=storages, STATUS_CACHE_SECONDS=3600):
        client = logged_in_client(tenant, user)
        print(
            f"renders: {args.renders} per page after {args.warmups} warm-ups, in-process (django.test.Client), "
            f"superuser in tenant {TENANT_SLUG}; target p95 <= {TARGET_P95_MS:.0f} ms"
        )
        results, profiles = [], []
        reference = timed(lambda: get_ok(client, "/api/health"), args.renders, args.warmups)
        select = timed(select_one, args.renders * 10, args.warmups)
        forget_cached_status()
        for label, url, before in pages:
            times = timed(lambda url=url: get_ok(client, url), args.renders, args.warmups, before)
            results.append((label, url, times))
            if before:
                before()
            timer = QueryTimer()
            with connection.execute_wrapper(timer):
                started = time.perf_counter()
                get_ok(client, url)
                elapsed = (time.perf_counter() - started) * 1000
            profiles.append((label, elapsed, timer.queries))

    print(
        f"reference: GET /api/health median {statistics.median(reference):.1f} ms, p95 {p95(reference):.1f} ms; "
        f"SELECT 1 through Django median {statistics.median(select):.2f} ms, p95 {p95(select):.2f} ms"
    )
    width = max(len(label) for label, _, _ in results)
    misses = 0
    for label, url, times in results:
        met = p95(times) <= TARGET_P95_MS
        misses += not met
        print(
            f"{label:<{width}}  median {statistics.median(times):7.1f} ms  p95 {p95(times):7.1f} ms  "
            f"max {max(times):7.1f} ms  target {'met' if met else 'NOT met'}  ({url})"
        )
    print("queries (one more render of each page, each statement timed):")
    for label, elapsed, queries in profiles:
        sql_ms = sum(q[0] for q in queries)
        slowest = sorted(queries, key=lambda q: q[0], reverse=True)
        print(
            f"  {label}: {len(queries)} queries, {sql_ms:.1f} ms of {elapsed:.1f} ms in SQL"
            + (f"; slowest {slowest[0][0]:.1f} ms: {slowest[0][1][:300]}" if slowest else "")
        )
        for ms, sql, params in slowest[: args.explain]:
            if sql.lstrip().upper().startswith("SELECT") and "set_config" not in sql:
                print(f"    {ms:.1f} ms: {sql} {params or ''}\n{explain(tenant, sql, params)}")
    sys.exit(1 if misses else 0)


if __name__ == "__main__":
    main()
