"""Scan time of the spot arbitrage scanner: one scanner bot over 4 venues x 50 instruments of quotes in Postgres.

Creates 50 fresh instruments mapped at four spot venues, stores one top-of-book quote per (venue, instrument) (200
rows, a second old), a fresh bench tenant with one PAPER ``spot_arbitrage`` bot on all 50 instruments and paper
inventory at every venue, then runs S scans through the real scan path (``execution.arbitrage.scanner
.scan_tenant``: sim-twin fill matching, ``usable_quotes``, fee schedule, inventory, the pure scan, arb_spreads rows,
one trace, the idempotency lookup, the runner heartbeat, in one transaction) and prints ms per scan, p50 and p99.

The same run measures the floor under it: ``usable_quotes`` alone (the one fail-closed read of the 200 quotes) and
the pure ``scan`` alone on the snapshot, and prints the scan's ratio to the read.

Only three spot venues are wired (Coinbase, Kraken, Binance.US; Hyperliquid's quotes are its perpetual's and the
spot scanner does not read them), so the bench adds a fourth spot venue name (``benchspot``) to the venue table of
this process only, with a taker fee in ``ARB_TAKER_FEES``: the code path is the one three venues take, with one more.

    DATABASE_URL=... DATABASE_OWNER_URL=... .venv/bin/python bench/arb_scan.py [--scans 200]

The database must be migrated. The first scan emits the one intent (the best pair above the threshold); the
others find the same opportunity in the same window and record COOLDOWN: the steady state of a scanner watching a
market that has not moved.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bots.models import Bot, Runner, Stage  # noqa: E402
from bots.strategies import get_strategy  # noqa: E402
from controlplane import tenancy  # noqa: E402
from controlplane.models import Tenant  # noqa: E402
from execution.arbitrage.scanner import ScanTotals, scan_tenant  # noqa: E402
from execution.arbitrage.snapshot import book_inventory, spot_snapshot  # noqa: E402
from execution.marketdata.models import SpotQuote  # noqa: E402
from execution.marketdata.quote_selectors import usable_quotes  # noqa: E402
from execution.models import Instrument, VenueInventory  # noqa: E402
from integrations import venue_symbols  # noqa: E402

VENUES = ("coinbase", "kraken", "binanceus", "benchspot")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def setup(run: str, instruments: int, skew_bps: int):
    venue_symbols.CCXT_MARKET_TYPES["benchspot"] = "spot"  # this process only: a fourth spot venue, with its twin
    settings.SIM_VENUE_FILL_MODELS = {**settings.SIM_VENUE_FILL_MODELS, "sim-benchspot": {"quotes": "benchspot"}}
    settings.ARB_TAKER_FEES = {"coinbase": 0.001, "kraken": 0.001, "binanceus": 0.001, "benchspot": 0.001}
    rng = random.Random(7)
    now = timezone.now()
    symbols = []
    quotes = []
    for i in range(instruments):
        symbol = f"A{run}-{i:02d}"
        instrument = Instrument.objects.create(
            symbol=symbol,
            venue="BENCH",
            asset_class="crypto",
            tick_size=Decimal("0.01"),
            multiplier=Decimal("1"),
            calendar="24/7",
            venue_symbols={v: {"symbol": f"A{i}/USD", "base": f"A{i}", "quote": "USD", "type": "spot"} for v in VENUES},
        )
        symbols.append(symbol)
        mid = Decimal(100 + i)
        for venue in VENUES:
            # Each venue's mid off the common one by up to skew_bps: with 10 bps of taker fee a leg, only the widest
            # pairs pay their costs, as in a real market (--skew-bps 60 makes most of them pay: the heavy case).
            skew = mid * Decimal(rng.randint(-skew_bps, skew_bps)) / 10_000
            bid, ask = mid + skew - Decimal("0.02"), mid + skew + Decimal("0.02")
            quotes.append(
                SpotQuote(
                    venue=venue,
                    instrument=instrument,
                    market=f"A{i}/USD",
                    market_type="spot",
                    bid=bid,
                    ask=ask,
                    bid_size=Decimal(rng.randint(1, 20)),
                    ask_size=Decimal(rng.randint(1, 20)),
                    received_at=now - timedelta(seconds=1),
                )
            )
    SpotQuote.objects.bulk_create(quotes)
    tenant = Tenant.objects.create(slug=f"bench-arb-{run}", name="Arbitrage scan benchmark")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        bot = Bot.objects.create(
            name="arb-bench",
            strategy="spot_arbitrage",
            parameters=get_strategy("spot_arbitrage").validate({"min_net_edge_bps": 10, "max_quantity": 1}),
            parameters_hash="bench",
            instruments=symbols,
            stage=Stage.PAPER,
        )
        Runner.objects.create(
            bot=bot, status=Runner.Status.RUNNING, started_by="bench", started_at=now, trace_id="bench"
        )
        VenueInventory.objects.bulk_create(
            [
                VenueInventory(
                    tenant=tenant, book="paper", venue=f"sim-{venue}", asset=asset, quantity=Decimal(quantity)
                )
                for venue in VENUES
                for asset, quantity in [("USD", 1_000_000)] + [(s, 5) for s in symbols[: instruments // 2]]
            ]
        )
    return tenant, bot, symbols, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--skew-bps", type=int, default=15)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    tenant, bot, symbols, now = setup(run, args.instruments, args.skew_bps)
    print(f"bench tenant {tenant.slug}: 1 scanner bot, {len(symbols)} instruments x {len(VENUES)} venues")

    scan_ms, read_ms, pure_ms = [], [], []
    with tenancy.tenant_context(tenant.id):
        strategy = get_strategy("spot_arbitrage")
        params = strategy.validate(bot.parameters)
        totals = ScanTotals()
        for k in range(args.scans):
            as_of = now + timedelta(milliseconds=k)
            started = time.perf_counter()
            scan_tenant(as_of=as_of, bots=[bot], totals=totals)
            scan_ms.append((time.perf_counter() - started) * 1000)
        for k in range(args.scans):
            as_of = now + timedelta(milliseconds=k)
            started = time.perf_counter()
            view = usable_quotes(symbols=symbols, as_of=as_of)
            read_ms.append((time.perf_counter() - started) * 1000)
        snapshot = spot_snapshot(symbols=symbols, as_of=now)
        inventory = book_inventory("paper")
        for _ in range(args.scans):
            started = time.perf_counter()
            result = strategy.scan(params, snapshot, inventory, now)
            pure_ms.append((time.perf_counter() - started) * 1000)
    print(
        f"quotes usable {len(view.usable)} of {len(view.usable) + len(view.unusable)}; pairs priced per scan "
        f"{len(result.opportunities)}; arb_spreads rows per scan {totals.spreads / args.scans:.1f}; "
        f"intents created {totals.intents_created}; reasons over the run {dict(totals.reasons)}"
    )
    p50, p99 = statistics.median(scan_ms), percentile(scan_ms, 0.99)
    read50 = statistics.median(read_ms)
    print(
        f"scan (whole path, one transaction): p50 {p50:.2f} ms  p99 {percentile(scan_ms, 0.99):.2f} ms  target <= 50 ms"
    )
    print(f"usable_quotes read alone (the floor): p50 {read50:.2f} ms  p99 {percentile(read_ms, 0.99):.2f} ms")
    print(f"pure scan() alone: p50 {statistics.median(pure_ms):.2f} ms  p99 {percentile(pure_ms, 0.99):.2f} ms")
    print(f"scan / read ratio (p50): {p50 / read50:.1f}x;  within 50 ms: p50 {p50 <= 50}, p99 {p99 <= 50}")


if __name__ == "__main__":
    main()
