"""Replay: a replay runner ticked through a date range of stored bars, apart from the live batches (it is never
judged late, and it decides for its one runner only)."""

from __future__ import annotations

from bots.models import Runner
from bots.timeframes import timeframe_delta
from execution.models import Instrument
from execution.orders.oms import process_pending_intents
from execution.tick.batches import BatchBars, BatchResult, floor_to_timeframe, tick_tenant
from traces.models import TickTrace


def run_replay(*, runner_id: int) -> dict:
    """Tick one replay runner through its date range of stored bars, filling through the OMS between steps. It
    stops at the end of the range, or as soon as the runner is no longer RUNNING (stopped, or its bot killed)."""
    runner = Runner.objects.select_related("bot").get(pk=runner_id)
    bot = runner.bot
    timeframe = bot.timeframe
    step = timeframe_delta(timeframe)
    as_of = floor_to_timeframe(runner.replay_cursor + step if runner.replay_cursor else runner.replay_start, timeframe)
    end = floor_to_timeframe(runner.replay_end, timeframe)
    totals = BatchResult(instrument=",".join(bot.instruments), timeframe=timeframe, as_of=as_of)
    instruments = list(Instrument.objects.filter(symbol__in=bot.instruments).order_by("symbol"))
    while as_of <= end:
        intents_before = totals.intents_created
        tick_tenant(
            batches=[
                (BatchBars(instrument=instrument, timeframe=timeframe, as_of=as_of), totals)
                for instrument in instruments
            ],
            context=TickTrace.Context.REPLAY,
            run_ref=runner.id,
            replay_runner_id=runner.id,
        )
        if totals.intents_created > intents_before:
            process_pending_intents()
        # Moves the cursor only while the runner is still RUNNING: a stop (or a kill's stop) ends the replay here.
        if not Runner.objects.filter(pk=runner.id, status=Runner.Status.RUNNING).update(replay_cursor=as_of):
            break
        as_of += step
    return totals.as_dict()
