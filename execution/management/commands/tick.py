"""``tick [--timeframe 1m] [--at TS]``: run one tick batch per instrument now, grouped into runs as beat groups them
(TICK_BATCH_INSTRUMENTS a run), or as of a past time."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bots.timeframes import TIMEFRAME_SECONDS
from execution.tick.batches import floor_to_timeframe, instruments_to_tick, run_tick_batches, task_groups


class Command(BaseCommand):
    help = (
        "Run the tick for every instrument a running bot ticks on, now or as of --at (only bars up to it are "
        "used), and hand the intents to the OMS in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--timeframe", default="1m", choices=sorted(TIMEFRAME_SECONDS))
        parser.add_argument("--at", default=None, help="ISO-8601 time with offset, e.g. 2026-11-02T15:31:00+00:00")

    def handle(self, *args, timeframe, at, **options):
        if at:
            try:
                moment = datetime.fromisoformat(at)
            except ValueError:
                raise CommandError(f"--at: {at!r} is not an ISO-8601 time") from None
            if moment.tzinfo is None:
                raise CommandError("--at: give an offset (e.g. +00:00); a naive time is ambiguous")
        else:
            moment = timezone.now()
        as_of = floor_to_timeframe(moment, timeframe)
        instruments = instruments_to_tick(timeframe=timeframe)
        if not instruments:
            self.stdout.write(f"no running {timeframe} bots: nothing to tick at {as_of.isoformat()}")
            return
        results = []
        for group, tenant_ids in task_groups(instruments):
            results += run_tick_batches(
                instruments=group, timeframe=timeframe, as_of=as_of, sync_oms=True, tenant_ids=tenant_ids
            )
        for result in results:
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(result.reasons.items())) or "-"
            self.stdout.write(
                f"{result.instrument} {timeframe} @ {as_of.isoformat()}: bots={result.bots} "
                f"decisions={result.decisions} no_trades={result.no_trades} intents={result.intents_created} "
                f"errors={result.errors} already_ticked={result.skipped_already_ticked} "
                f"data={result.data_problem or 'ok'} reasons: {reasons}"
            )
