"""The tenant's bots a tick decides, read in one statement for all the batch's instruments: each bot with its
configuration (parsed once per row version, kept per process), whether it is already traced on this bar, its
position in both books, and each instrument's kill and open-order flags (``tenant_batch``). Split from
``execution.tick.batches``, which runs the pipeline around it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.db import connection

from bots.models import Bot, GlobalKillSwitch, Runner, TenantKillSwitch
from bots.strategies import quote_strategy_names
from controlplane import tenancy
from controlplane.books import Book
from execution.models import Instrument, Order, StrategyPosition
from execution.tick.decide import TickBot
from traces.models import TickTrace


@dataclass(frozen=True)
class TenantBatch:
    """A tenant's part of a batch and what it must know before deciding: its bots (with whether each already has
    a trace for this bar, so a re-run skips it), both kill switches, and whether the sim venue has orders to fill."""

    bots: list[TickBot]
    system_killed: bool
    tenant_killed: bool
    sim_orders_working: bool
    # Runners whose newest traced bar is not known yet (their first tick since start or restart): the heartbeat
    # looks it up for them (``execution.tick.batches``).
    newest_bar_unknown: frozenset[int] = frozenset()


# A bot's instruments (a JSON list of symbols, each element read as text) are expanded and hash-joined to the
# batch's instruments: a `?` test of every bot against every instrument was a third of the statement (RLS keeps the
# GIN index out of reach: the operator is not leakproof). A bot whose instruments are not a list ticks on none. A
# symbol a bot lists twice comes back twice; ``tenant_batch`` keeps one. The re-run
# check is a LATERAL probe of the trace's unique index per bot (LIMIT 1 keeps the planner from hashing the tenant's
# whole trace history instead), made only when it can find something (<may_be_ticked>, a one-time filter): a live
# tick writes its bots' traces and their runners' ``last_tick_bar_ts`` (the newest bar traced) in one transaction,
# so a runner whose newest bar is older than this one has no trace for it (a re-run, or a runner new since, probes;
# the probes were a third of the statement's time, one index descent a bot every tick). The open-order flag reads a
# partial index of open orders only. Each bot's position in the instrument comes with it, in both books (the bot's
# order book is chosen in Python, by bots.routing.order_book, the one rule): a bot that sends nothing needs no other
# risk state. A live run reads the tenant's positions in the batch's instruments once and joins them; a replay (one
# runner) probes its own.
_OPEN_STATUSES_SQL = ", ".join(f"'{status}'" for status in (Order.Status.WORKING, Order.Status.PARTIALLY_FILLED))
_TENANT_BATCH_SQL = f"""
SELECT i.id, r.id, b.id, b.tenant_id, b.strategy, b.venue, b.stage,
       b.autonomy_tier, b.data_source, b.killed, b.kill_reason, b.reconcile_mismatch, ticked.yes IS NOT NULL,
       held.paper, held.live,
       EXISTS (SELECT 1 FROM {GlobalKillSwitch._meta.db_table} WHERE id = %(singleton)s AND killed),
       EXISTS (SELECT 1 FROM {TenantKillSwitch._meta.db_table} WHERE tenant_id = %(tenant)s AND killed),
       EXISTS (SELECT 1 FROM {Order._meta.db_table}
                WHERE tenant_id = %(tenant)s AND instrument_id = i.id
                  AND status IN ({_OPEN_STATUSES_SQL}) AND venue = ANY(%(sim_venues)s::text[])),
       b.xmin::text, r.last_tick_bar_ts IS NULL
  FROM {Runner._meta.db_table} r
  JOIN {Bot._meta.db_table} b ON b.id = r.bot_id
 CROSS JOIN LATERAL jsonb_array_elements_text(CASE jsonb_typeof(b.instruments) WHEN 'array' THEN b.instruments END)
       AS listed(symbol)
  JOIN {Instrument._meta.db_table} i ON i.symbol = listed.symbol AND i.id = ANY(%(instruments)s::bigint[])
  LEFT JOIN LATERAL (SELECT 1 AS yes FROM {TickTrace._meta.db_table} t
                      WHERE t.tenant_id = b.tenant_id AND t.bot_id = b.id AND t.instrument = i.symbol
                        AND t.bar_ts = %(bar_ts)s AND t.context = %(context)s AND <run_ref> AND <may_be_ticked>
                      LIMIT 1) AS ticked ON true
  LEFT JOIN <held>
 WHERE r.tenant_id = %(tenant)s AND r.status = %(running)s AND <runners>
 ORDER BY i.id, b.id
"""
_HELD = f"""max(p.quantity) FILTER (WHERE p.book = '{Book.PAPER}') AS paper,
         max(p.quantity) FILTER (WHERE p.book = '{Book.LIVE}') AS live
    FROM {StrategyPosition._meta.db_table} p"""
_HELD_BY_TENANT = f"""(SELECT p.bot_id, p.instrument_id, {_HELD}
              WHERE p.tenant_id = %(tenant)s AND p.instrument_id = ANY(%(instruments)s::bigint[])
              GROUP BY p.bot_id, p.instrument_id) AS held ON held.bot_id = b.id AND held.instrument_id = i.id"""
_HELD_BY_BOT = f"""LATERAL (SELECT {_HELD}
              WHERE p.tenant_id = b.tenant_id AND p.bot_id = b.id AND p.instrument_id = i.id) AS held ON true"""
# Scanner bots (quote strategies) tick through execution.arbitrage, never on bars.
_LIVE_RUNNERS = "r.mode = %(mode)s AND b.timeframe = %(timeframe)s AND b.strategy <> ALL(%(quote_strategies)s::text[])"
_REPLAY_RUNNER = "r.id = %(runner)s"
_MAY_BE_TICKED = "(r.last_tick_bar_ts IS NULL OR r.last_tick_bar_ts >= %(bar_ts)s)"
# A bot's parameters and risk limits, parsed, by tenant and bot id, with the bot row's version (xmin: any update of
# the row, through the ORM or not, writes a new version with a new xmin). The batch read returns each bot's version;
# the configuration is read (``_CONFIG_SQL``, a second statement) only for the bots whose version the cache does not
# hold: serializing and parsing both columns of every bot each tick was 1.5 ms of the statement and 1 ms of Python a
# 1,000-bot round, and sending the cache's versions to the statement for it to compare (two 1,000-element arrays,
# unnested and joined) cost more than comparing them here. Per process (a worker serves its tenants' ticks again and
# again); a tenant's entries are dropped past _CONFIG_CACHE_MAX.
_config_cache: dict[int, dict[int, tuple[str, dict, dict]]] = {}
_CONFIG_CACHE_MAX = 50_000
# The parsed configurations by their JSON text, per tenant: bots configured alike (the same parameters and risk
# limits) get the same objects, so the tick decides each distinct configuration and position once
# (``execution.tick.batches``: bots are grouped by their parameters' identity). Dropped with the tenant's entries.
_config_texts: dict[int, dict[str, tuple[dict, dict]]] = {}
# The configuration of the bots whose version the batch read found changed (or not yet cached), with the version it
# is of: the row may have changed again since the batch read, and the entry is kept with the version it was read at.
_CONFIG_SQL = (
    f"SELECT id, xmin::text, jsonb_build_array(parameters, risk_limits)::text FROM {Bot._meta.db_table}"
    " WHERE id = ANY(%s::bigint[])"
)

# JIT off for the tick's transaction, set in the batch read's own round trip (the simple query protocol plans each
# statement of a string after running the one before). The planner's estimate of this statement grows with its
# guesses, not its work (a hundred elements assumed per bot's instruments, the open-order probe costed per row): on
# the bench's 1,000 bots it passed jit_above_cost and every round compiled about 100 functions, 555 ms, for a
# statement that runs in 7 ms. Nothing the tick runs is long enough to gain from JIT.
_NO_JIT = "SELECT set_config('jit', 'off', true);\n"
_TENANT_BATCH_SQL_FOR = {
    (replay, ref, live_tick): _NO_JIT
    + _TENANT_BATCH_SQL.replace("<runners>", _REPLAY_RUNNER if replay else _LIVE_RUNNERS)
    .replace("<run_ref>", "t.run_ref = %(run_ref)s" if ref else "t.run_ref IS NULL")
    .replace("<held>", _HELD_BY_BOT if replay else _HELD_BY_TENANT)
    .replace("<may_be_ticked>", _MAY_BE_TICKED if live_tick else "true")
    for replay in (False, True)
    for ref in (False, True)
    for live_tick in (False, True)
}


def array_literal(values: Iterable[int | str]) -> str:
    """Values whose text needs no quoting (ids, transaction ids) as a Postgres array literal, for a ``%s::bigint[]``
    or ``%s::text[]`` parameter: the driver quotes a list of a thousand ints item by item, five times slower."""
    return "{" + ",".join(map(str, values)) + "}"


def tenant_batch(
    *,
    instruments: list[Instrument],
    timeframe: str,
    bar_ts: datetime,
    context: str,
    run_ref: int | None = None,
    replay_runner_id: int | None = None,
) -> dict[int, TenantBatch]:
    """The current tenant's RUNNING live-mode bots on each of ``instruments`` (on ``timeframe``), or the one replay
    runner, with each instrument's flags, by instrument id (an instrument without such bots is absent): one
    statement, whatever the number of instruments. A bot on two of them is in both."""
    replay = replay_runner_id is not None
    tenant_id = tenancy.require_tenant_id()
    configs = _config_cache.setdefault(tenant_id, {})
    texts = _config_texts.setdefault(tenant_id, {})
    if len(configs) > _CONFIG_CACHE_MAX or len(texts) > _CONFIG_CACHE_MAX:
        configs.clear()
        texts.clear()
    with connection.cursor() as cursor:
        cursor.execute(
            _TENANT_BATCH_SQL_FOR[
                (replay, run_ref is not None, not replay and run_ref is None and context == TickTrace.Context.TICK)
            ],
            {
                "tenant": tenant_id,
                "running": Runner.Status.RUNNING,
                "mode": Runner.Mode.LIVE,
                "timeframe": timeframe,
                "instruments": [instrument.id for instrument in instruments],
                "runner": replay_runner_id,
                "bar_ts": bar_ts,
                "context": context,
                "run_ref": run_ref,
                "singleton": GlobalKillSwitch.SINGLETON_ID,
                "sim_venues": list(settings.SIM_VENUE_FILL_MODELS),
                "quote_strategies": quote_strategy_names(),
            },
        )
        cursor.nextset()  # set_config's result first, then the bots
        rows = cursor.fetchall()
        # One copy of the cache, compared and read from: another thread of the process may replace an entry
        # meanwhile, and a bot must get the configuration of the version it is matched with.
        known = dict(configs)
        changed = {row[2] for row in rows if (entry := known.get(row[2])) is None or entry[0] != row[18]}
        if changed:
            cursor.execute(_CONFIG_SQL, [array_literal(sorted(changed))])
            read = set()
            for bot_id, xmin, text in cursor.fetchall():
                parsed = texts.get(text)
                if parsed is None:
                    parsed = texts[text] = _json_object(text)
                known[bot_id] = configs[bot_id] = (xmin, *parsed)
                read.add(bot_id)
            if len(read) < len(changed):  # a bot deleted since the batch read: none to decide
                rows = [row for row in rows if row[2] not in changed or row[2] in read]
    by_instrument: dict[int, list[tuple]] = {}
    last = (None, None)
    for row in rows:  # ordered by instrument and bot: a bot listing a symbol twice comes back twice in a row
        if (row[0], row[2]) != last:
            by_instrument.setdefault(row[0], []).append(row)
            last = (row[0], row[2])
    return {
        instrument_id: TenantBatch(
            [TickBot(*row[1:5], *known[row[2]][1:], *row[5:15]) for row in found],
            found[0][15],
            found[0][16],
            found[0][17],
            frozenset(row[1] for row in found if row[19]),
        )
        for instrument_id, found in by_instrument.items()
    }


# orjson reads an integer past 64 bits as a float (the stdlib: an int) and refuses one past a double's range; jsonb
# prints every number in full, so 19 digits in a row is where orjson's answer could differ.
_LONG_NUMBER = re.compile(r"\d{19}")


def _json_object(text: str):
    """JSON exactly as the driver's loader would give it (``json.loads``), through orjson where that is the same:
    a bot's two JSON columns (read as one array, one parse a bot) were a tenth of the batch's Python time."""
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
