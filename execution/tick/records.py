"""What a tick records besides its traces: the runners' heartbeat (sent by ``execution.tick.batches`` in the traces'
transaction) and the batches' summary rows."""

from __future__ import annotations

import orjson
from django.db import connection

from bots.models import Runner
from controlplane.trace import current_trace_id
from execution.models import TickBatch
from execution.tick.decide import BatchResult
from traces.models import TickTrace

# The heartbeat of the runners a tick traced, and for a live tick (``bar_ts``; NULL for a replay's, which leaves it)
# each runner's newest traced bar, which ``execution.tick.tenant_bots`` reads to skip the re-run probe of a runner
# whose newest bar is older than the one it ticks. What it claims, no tick trace of the bot after that bar, is made
# true at a runner's first tick (start and restart leave it NULL; that tick's heartbeat looks up the bot's newest
# tick trace, by whichever runner, after writing its own) and kept by every tick after, in the traces' transaction.
# The look-up is a statement variant of its own, sent only when the batch read saw such a runner: a subquery over
# the partitioned trace table costs its planning (2-3 ms, every partition) on every statement that holds it.
_NEWEST_TRACED = {
    False: "CASE WHEN last_tick_bar_ts IS NULL THEN NULL ELSE greatest(last_tick_bar_ts, %(bar_ts)s::timestamptz) END",
    True: f"""CASE WHEN last_tick_bar_ts IS NOT NULL THEN greatest(last_tick_bar_ts, %(bar_ts)s::timestamptz)
        ELSE (SELECT max(t.bar_ts) FROM {TickTrace._meta.db_table} t
               WHERE t.tenant_id = {Runner._meta.db_table}.tenant_id AND t.bot_id = {Runner._meta.db_table}.bot_id
                 AND t.context = '{TickTrace.Context.TICK}' AND t.run_ref IS NULL) END""",
}
RUNNERS_TICKED_SQL = {
    (live, look_up): f"""
UPDATE {Runner._meta.db_table} SET last_heartbeat_at = %(now)s, last_tick_at = %(now)s,
    last_tick_bar_ts = {_NEWEST_TRACED[look_up] if live else "last_tick_bar_ts"},
    consecutive_errors = CASE WHEN id = ANY(%(failed)s::bigint[]) THEN consecutive_errors + 1 ELSE 0 END
WHERE tenant_id = %(tenant)s AND id = ANY(%(ids)s::bigint[])
"""
    for live in (False, True)
    for look_up in (False, True)
}


RUNNERS_HEARD_SQL = {
    look_up: f"""
UPDATE {Runner._meta.db_table} SET last_heartbeat_at = %(now)s, last_tick_at = %(now)s,
    last_tick_bar_ts = {_NEWEST_TRACED[look_up]}
WHERE tenant_id = %(tenant)s AND id = ANY(%(ids)s::bigint[])
"""
    for look_up in (False, True)
}


# One statement for every batch of a run, in autocommit: its own transaction, whose commit does not wait for the WAL
# flush (set_config's local setting lasts until that commit). BEGIN, SET LOCAL, INSERT and COMMIT per batch were four
# round trips each. The rows go as one JSON parameter: psycopg parses a statement's placeholders again on every
# execution once it has more than 50 parameters (it caches none past that), and twelve a batch made that parse 1-3 ms
# of client time a round for a 20-instrument task.
_RECORD_BATCHES_SQL = f"""
WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO {TickBatch._meta.db_table} (instrument_symbol, timeframe, as_of, market_open, data_problem, bots,
    decisions, no_trades, intents_created, errors, duration_ms, trace_id, recorded_at)
SELECT v.instrument_symbol, v.timeframe, v.as_of, v.market_open, v.data_problem, v.bots, v.decisions, v.no_trades,
       v.intents_created, v.errors, %(duration_ms)s::double precision, %(trace_id)s, now()
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(instrument_symbol text, timeframe text, as_of timestamptz,
       market_open boolean, data_problem text, bots integer, decisions integer, no_trades integer,
       intents_created integer, errors integer), unflushed
ON CONFLICT ON CONSTRAINT tickbatch_unique DO UPDATE
SET market_open = coalesce(EXCLUDED.market_open, {TickBatch._meta.db_table}.market_open),
    data_problem = CASE WHEN EXCLUDED.market_open IS NULL THEN {TickBatch._meta.db_table}.data_problem
                        ELSE EXCLUDED.data_problem END, bots = {TickBatch._meta.db_table}.bots + EXCLUDED.bots,
    decisions = {TickBatch._meta.db_table}.decisions + EXCLUDED.decisions,
    no_trades = {TickBatch._meta.db_table}.no_trades + EXCLUDED.no_trades,
    intents_created = {TickBatch._meta.db_table}.intents_created + EXCLUDED.intents_created,
    errors = {TickBatch._meta.db_table}.errors + EXCLUDED.errors, duration_ms = EXCLUDED.duration_ms,
    trace_id = EXCLUDED.trace_id, recorded_at = now()
"""


def record_batches(results: list[BatchResult], *, duration_ms: float) -> None:
    """One upsert per batch (one row per instrument), all in one statement; a re-run adds what it did (usually
    nothing) to the first run's counts. ``duration_ms`` is the whole run's: the batches of one run share their
    transactions, so no batch has a time of its own.

    Its commit does not wait for the WAL flush: this is the batches' summary for the observatory, and the traces,
    intents and heartbeats it counts were committed durably in their own transactions. A database crash in the
    next fraction of a second can lose the summary rows, never the record of what the tick did."""
    if not results:
        return
    rows = [
        {
            "instrument_symbol": result.instrument,
            "timeframe": result.timeframe,
            "as_of": result.as_of.isoformat(),
            "market_open": result.market_open,
            "data_problem": result.data_problem or "",
            "bots": result.bots,
            "decisions": result.decisions,
            "no_trades": result.no_trades,
            "intents_created": result.intents_created,
            "errors": result.errors,
        }
        for result in results
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_BATCHES_SQL,
            {"rows": orjson.dumps(rows).decode(), "duration_ms": round(duration_ms, 3), "trace_id": current_trace_id()},
        )
