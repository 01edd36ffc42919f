"""The OMS's own cost in one process, without the broker: N pending intents (20% two-leg) through
``process_pending_intents``, then the sim venue booking the fills of their orders on one bar.

    DATABASE_URL=... DATABASE_OWNER_URL=... .venv/bin/python bench/oms_in_process.py [--intents 200] [--submit-batch 1]

Creates a fresh tenant with 50 bots on one sim instrument, submits the intents (``source="tick"``: nothing is
enqueued; one at a time, or ``--submit-batch`` at a time through ``submit_intents``) and times that, times the OMS over all of them, stores the next bar without its matching hook and times
``match_working_orders`` on it. Prints milliseconds and statements per intent and per fill. It only calls those two
public functions, so the same script run against an older checkout gives the "before" figure.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oms_throughput as setup  # noqa: E402 (sets Django up)
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from controlplane import tenancy  # noqa: E402
from controlplane.models import Tenant  # noqa: E402
from execution.models import Bar  # noqa: E402
from execution.orders import oms  # noqa: E402
from execution.orders.intent_batches import IntentRequest, submit_intents  # noqa: E402
from execution.orders.intents import submit_intent  # noqa: E402
from execution.orders.paper_venue import match_working_orders  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=200)
    parser.add_argument("--submit-batch", type=int, default=1, help="1: submit_intent; K: submit_intents K at a time")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    tenant = Tenant.objects.create(slug=f"oms-in-process-{run}", name="OMS in-process benchmark")
    instruments = setup.make_instruments(1, run)
    bots = setup.make_bots(tenant, 50)
    with tenancy.tenant_context(tenant.id):
        work = setup.plan(args.intents, bots, instruments)
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            if args.submit_batch > 1:
                for start in range(0, len(work), args.submit_batch):
                    requests = [
                        IntentRequest(bot=bot, legs=legs, idempotency_key=key, bar_ts=setup.DECISION_BAR)
                        for bot, legs, key in work[start : start + args.submit_batch]
                    ]
                    submit_intents(requests, source="tick")
            else:
                for bot, legs, key in work:
                    submit_intent(bot=bot, legs=legs, idempotency_key=key, source="tick", bar_ts=setup.DECISION_BAR)
            elapsed = time.perf_counter() - started
        how = "one at a time" if args.submit_batch <= 1 else f"{args.submit_batch} a batch"
        print(
            f"submission ({how}): {args.intents} intents in {elapsed:.2f}s: {elapsed * 1000 / args.intents:.1f} "
            f"ms/intent, {len(queries) / args.intents:.1f} statements/intent"
        )
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            oms.process_pending_intents(limit=args.intents)
            elapsed = time.perf_counter() - started
        print(
            f"OMS: {args.intents} intents in {elapsed:.2f}s: {elapsed * 1000 / args.intents:.1f} ms/intent, "
            f"{len(queries) / args.intents:.1f} statements/intent"
        )
        bar = setup.bar(setup.DECISION_BAR + setup.MINUTE)
        Bar.objects.create(
            instrument=instruments[0],
            timeframe="1m",
            ts=bar.ts,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            source="imported",
        )
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            fills = match_working_orders(instrument=instruments[0], timeframe="1m", bar_ts=bar.ts)
            elapsed = time.perf_counter() - started
        print(
            f"sim fills: {fills} on one bar in {elapsed:.2f}s: {elapsed * 1000 / max(fills, 1):.1f} ms/fill, "
            f"{len(queries)} statements for the bar"
        )


if __name__ == "__main__":
    main()
