"""The risk state every order check needs, read for many bots at once in a constant number of queries.

The tick checks up to 1,000 bots of one instrument per batch, so nothing here queries per bot: trading states,
positions, recent orders and cancels, and today's PnL arrive in one statement for the whole batch, whatever its
size.

Every number is read from one book per bot: the book of the venue its order goes to (``bots.routing.order_book``,
``controlplane.books``). A PAPER bot is checked against its paper positions, orders and PnL; the same bot once
LIVE against its live ones only, so the first live order after a promotion is sized from what the venue holds
(the live book, reconciled by the LIVE gate), never from the +2 it held on the sim venue. The tenant scope sums
the tenant's bots in that same book.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection

from bots.models import Bot, Stage
from bots.risk_limits import InvalidRiskLimits, parse_risk_limits
from bots.routing import order_book
from controlplane import status as system_status_module
from controlplane import tenancy
from controlplane.books import Book, book_for_venue
from execution.models import Instrument, Order, StrategyPosition, TradingControl
from execution.risk.checks import (
    RATE_WINDOW,
    AutonomyStatus,
    RecentOrder,
    RiskLimits,
    RiskScope,
    RiskState,
    Side,
    TradingState,
    scaled_limits,
)
from traces.models import ProfitVariables

_NO_LIMITS = RiskLimits()
# A stored duplicate window past a year is read as a year when fetching orders: Postgres' make_interval wraps an
# absurd value around to a negative interval, which would silently shrink the window, and Python's timedelta
# overflows; a scope whose own window cannot be read is halted by limits_from_json.
MAX_DUPLICATE_WINDOW_SECONDS = 365 * 24 * 3600


def limits_from_json(data: dict | None) -> RiskLimits:
    """Bot and tenant limits as stored (JSON) to :class:`RiskLimits`, through the bot's own schema
    (bots.risk_limits); raises InvalidRiskLimits naming the key."""
    values = parse_risk_limits(data)
    return RiskLimits(**values) if values else _NO_LIMITS


def _scope(name: str, limits_json, state_kwargs: dict, *, factor: Decimal | None = None) -> RiskScope:
    try:
        limits = limits_from_json(limits_json)
    except InvalidRiskLimits:
        return RiskScope(name, RiskLimits(), RiskState(**{**state_kwargs, "trading_state": TradingState.HALTED}))
    return RiskScope(name, limits if factor is None else scaled_limits(limits, factor), RiskState(**state_kwargs))


# --- Autonomy: what a LIVE bot's tier and the system status allow ---------------------------------------------

_LIVE_TIERS = (Bot.AutonomyTier.T2, Bot.AutonomyTier.T3)
_STRICTNESS = (TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED)


def autonomy_limit_factor(bot) -> Decimal | None:
    """How much of its limits a LIVE bot at T2 may use (``AUTONOMY_T2_LIMIT_FACTOR``); None: the limits as set."""
    if bot.stage == Stage.LIVE and bot.autonomy_tier == Bot.AutonomyTier.T2:
        return Decimal(str(settings.AUTONOMY_T2_LIMIT_FACTOR))
    return None


def autonomy_trading_state(bot, state: TradingState) -> TradingState:
    """A LIVE bot below T2 only reduces exposure, whatever its own state says (the autonomy supervisor also sets
    REDUCE_ONLY when the tier falls; this holds even before it has run). Never loosens a stricter state."""
    if bot.stage == Stage.LIVE and bot.autonomy_tier not in _LIVE_TIERS:
        return max(state, TradingState.REDUCE_ONLY, key=_STRICTNESS.index)
    return state


def autonomy_status(tenant_id: int) -> AutonomyStatus:
    """The cached system status of ``tenant_id`` as the order checks read it: allowed only when it is OK (an
    UNKNOWN or failed status is not), with the blockers' codes when it is not."""
    if tenancy.current_tenant_id() == tenant_id:
        status = system_status_module.cached_system_status()
    else:
        with tenancy.tenant_context(tenant_id):
            status = system_status_module.cached_system_status()
    allowed = status.get("status") == system_status_module.OK and status.get("autonomy_allowed") is True
    codes = tuple(sorted({str(b.get("code")) for b in status.get("blockers") or []}))
    return AutonomyStatus(allowed=allowed, system_status=str(status.get("status")), blockers=() if allowed else codes)


def _instrument(instrument: Instrument | str) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    return Instrument.objects.get(symbol=instrument)


def _duplicate_window(limits_json: Iterable) -> timedelta:
    longest = RATE_WINDOW
    for data in limits_json:
        seconds = (data or {}).get("duplicate_window_seconds") if isinstance(data, dict) else None
        if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
            longest = max(longest, timedelta(seconds=min(seconds, MAX_DUPLICATE_WINDOW_SECONDS)))
    return longest


# One statement, one round trip: each part is a JSON array the Python side turns into scopes. Numbers travel as
# text (exact decimals); RLS scopes every table to the tenant in context, the tenant filters serve the indexes.
# The order window is the longest duplicate window of the bots (a parameter) or of their tenants' controls (read
# here, since they arrive with this very statement); fetching a little more than a scope needs is harmless, as
# each scope filters by its own window. Positions are per (bot, book, instrument) asked for; everything else
# (controls, recent orders and cancels of any instrument, today's PnL) is read once for all of them. The recent
# orders are the bots' own, and every order of the tenant only when its limits count them (COUNTING_LIMITS): at
# a thousand intents a second the tenant's last minute is tens of thousands of rows no check of its reads.
_RISK_STATE_SQL = f"""
WITH controls AS (
    SELECT tenant_id, bot_id, state, risk_limits FROM {TradingControl._meta.db_table}
    WHERE tenant_id = ANY(%(tenants)s::bigint[]) AND (bot_id = ANY(%(bots)s::bigint[]) OR bot_id IS NULL)
), window_start AS (
    SELECT %(at)s::timestamptz - greatest(%(bot_window)s::interval, coalesce(max(make_interval(
        secs => CASE WHEN jsonb_typeof(risk_limits -> 'duplicate_window_seconds') = 'number'
                     THEN least(greatest((risk_limits ->> 'duplicate_window_seconds')::float8, 0), %(max_window)s)
                END)), interval '0')
    ) AS since FROM controls WHERE bot_id IS NULL
), bot_books AS (
    SELECT * FROM unnest(%(pos_bots)s::bigint[], %(pos_books)s::text[], %(pos_instruments)s::bigint[])
        AS b(bot_id, book, instrument_id)
), bot_pairs AS (
    SELECT DISTINCT bot_id, book FROM bot_books
), counting_tenants AS (
    SELECT tenant_id FROM controls WHERE bot_id IS NULL AND risk_limits ?| %(counting_limits)s::text[]
), recent_orders AS (
    -- Three disjoint parts, each a range of one index: per bot of the batch (a lateral scan kept apart from the
    -- outer query by OFFSET 0, so its plan is a range of (bot, created_at): the window's start is a subquery, whose
    -- share of the orders the planner guesses, and a scan of the window across every bot looked cheaper), its orders created in the window, and its older orders
    -- cancelled in the rate window (bot, cancelled_at); then, only when a tenant's limits count them, its other
    -- bots' orders of either kind. (One filter with ORs read every order the tenant ever had, under the OMS's
    -- check lock.)
    SELECT o.* FROM unnest(%(bots)s::bigint[]) AS b(id) CROSS JOIN LATERAL (
        SELECT * FROM {Order._meta.db_table} o
         WHERE o.bot_id = b.id AND o.created_at > (SELECT since FROM window_start) AND o.created_at <= %(at)s
        OFFSET 0
    ) o
     WHERE o.tenant_id = ANY(%(tenants)s::bigint[]) AND o.purpose = %(purpose)s
    UNION ALL
    SELECT o.* FROM unnest(%(bots)s::bigint[]) AS b(id) CROSS JOIN LATERAL (
        SELECT * FROM {Order._meta.db_table} o
         WHERE o.bot_id = b.id AND o.cancelled_at > %(cancels_since)s AND o.cancelled_at <= %(at)s
        OFFSET 0
    ) o
     WHERE o.tenant_id = ANY(%(tenants)s::bigint[]) AND o.purpose = %(purpose)s
       AND NOT (o.created_at > (SELECT since FROM window_start) AND o.created_at <= %(at)s)
    UNION ALL
    SELECT * FROM {Order._meta.db_table} o
     WHERE EXISTS (SELECT FROM counting_tenants) AND o.tenant_id IN (SELECT tenant_id FROM counting_tenants)
       AND o.tenant_id = ANY(%(tenants)s::bigint[])
       AND (o.bot_id = ANY(%(bots)s::bigint[])) IS NOT TRUE AND o.purpose = %(purpose)s
       AND ((o.created_at > (SELECT since FROM window_start) AND o.created_at <= %(at)s)
            OR (o.cancelled_at > %(cancels_since)s AND o.cancelled_at <= %(at)s))
)
SELECT
    (SELECT coalesce(json_agg(json_build_array(tenant_id, bot_id, state, risk_limits)), '[]') FROM controls),
    (SELECT coalesce(json_agg(json_build_array(p.instrument_id, p.bot_id, p.book, p.quantity::text)), '[]')
       FROM {StrategyPosition._meta.db_table} p
       JOIN bot_books b ON b.bot_id = p.bot_id AND b.book = p.book AND b.instrument_id = p.instrument_id),
    (SELECT coalesce(json_agg(json_build_array(tenant_id, instrument_id, book, total::text)), '[]') FROM (
        SELECT tenant_id, instrument_id, book, sum(quantity) AS total FROM {StrategyPosition._meta.db_table}
        WHERE tenant_id = ANY(%(tenants)s::bigint[]) AND instrument_id = ANY(%(instruments)s::bigint[])
        GROUP BY tenant_id, instrument_id, book) AS totals),
    (SELECT coalesce(json_agg(json_build_array(o.tenant_id, o.bot_id, i.symbol, o.side, o.quantity::text,
                                               coalesce(o.limit_price, o.reference_price, 0)::text,
                                               o.created_at, o.cancelled_at,
                                               CASE WHEN o.venue = ANY(%(sim_venues)s::text[])
                                                    THEN '{Book.PAPER}' ELSE '{Book.LIVE}' END) ORDER BY o.id), '[]')
       FROM recent_orders o JOIN {Instrument._meta.db_table} i ON i.id = o.instrument_id),
    (SELECT coalesce(json_agg(json_build_array(v.bot_id, v.book, v.pnl::text)), '[]')
       FROM {ProfitVariables._meta.db_table} v JOIN bot_pairs b ON b.bot_id = v.bot_id AND b.book = v.book
      WHERE v.tenant_id = ANY(%(tenants)s::bigint[]) AND v.day = %(day)s),
    (SELECT coalesce(json_agg(json_build_array(tenant_id, book, total::text)), '[]') FROM (
        SELECT tenant_id, book, sum(pnl) AS total FROM {ProfitVariables._meta.db_table}
        WHERE tenant_id = ANY(%(tenants)s::bigint[]) AND day = %(day)s GROUP BY tenant_id, book) AS totals)
"""


# The tenant limits that count the tenant's recent orders or cancels (``execution.risk.checks._scope_checks``,
# ``check_cancel``); a tenant scope without any of them carries none (nothing reads them).
COUNTING_LIMITS = ("max_orders_per_minute", "max_cancels_per_minute", "duplicate_window_seconds")


@dataclass(frozen=True)
class RiskSnapshot:
    """The risk scopes of a batch of bots, and their positions in the instrument (the tick needs both).
    ``counting_tenants``: the tenants whose limits count their orders across bots (``COUNTING_LIMITS``), as the
    same statement read their controls."""

    scopes: dict[int, list[RiskScope]]
    positions: dict[int, Decimal]
    counting_tenants: frozenset[int] = frozenset()


def counts_tenant_orders(risk_limits) -> bool:
    """Whether a tenant's limits (its control's ``risk_limits``) count its orders or cancels across its bots: then
    one bot's order check depends on every other bot's orders (``COUNTING_LIMITS``)."""
    return isinstance(risk_limits, dict) and bool(set(risk_limits) & set(COUNTING_LIMITS))


@dataclass(frozen=True)
class SnapshotRequest:
    """One snapshot of :func:`risk_snapshots`: these bots, in this instrument, each in ``books[bot.id]`` (else its
    order book)."""

    bots: Sequence
    instrument: Instrument | str
    books: dict[int, str] | None = None


def risk_snapshot(
    *, bots: Sequence, instrument: Instrument | str, at: datetime, books: dict[int, str] | None = None
) -> RiskSnapshot:
    """For each bot, ``[bot scope, tenant scope]`` with limits and the state at ``at`` (positions in
    ``instrument``; orders and cancels of any instrument for the rate limits), all of one book: ``books[bot.id]``
    when given (an order to a named venue), else the bot's order book. One query for any number of bots. The
    tenant scope carries the tenant's recent orders and cancels only when its limits count them
    (``COUNTING_LIMITS``); the bot scope always carries the bot's.

    A LIVE bot's scope also carries its autonomy: at T2 its limits are scaled by ``AUTONOMY_T2_LIMIT_FACTOR``,
    below T2 it is at least REDUCE_ONLY, and it carries the cached system status (read once per tenant), under
    which only reducing orders pass while the system is not OK.

    Daily PnL is today's (UTC) realized PnL after fees in that book, as the OMS keeps it in ``ProfitVariables``.
    """
    return risk_snapshots([SnapshotRequest(bots, instrument, books)], at=at)[0]


def leg_scopes(bot_legs: Iterable[tuple[Bot, object]], *, at: datetime) -> dict[tuple[int, str], dict]:
    """The risk scopes of each (instrument id, book) the legs go to, for the bots that send them (``scopes[key]
    [bot.id]``), in one :func:`risk_snapshots` query: what the OMS's batch re-check and a batch submission check
    every leg against (a leg's book is its venue's)."""
    return leg_risk_state(bot_legs, at=at)[0]


def leg_risk_state(
    bot_legs: Iterable[tuple[Bot, object]], *, at: datetime
) -> tuple[dict[tuple[int, str], dict], frozenset[int]]:
    """:func:`leg_scopes`, and the tenants whose limits count orders across bots as that same statement read them
    (the OMS chooses which lock its check needed from them: ``execution.orders.oms``)."""
    wanted: dict[tuple[int, str], dict[int, Bot]] = defaultdict(dict)
    instruments: dict[int, Instrument] = {}
    for bot, leg in bot_legs:
        wanted[leg.instrument_id, str(book_for_venue(leg.venue))][bot.id] = bot
        instruments[leg.instrument_id] = leg.instrument
    keys = list(wanted)
    snapshots = risk_snapshots(
        [
            SnapshotRequest(
                bots=list(wanted[key].values()),
                instrument=instruments[key[0]],
                books={bot_id: key[1] for bot_id in wanted[key]},
            )
            for key in keys
        ],
        at=at,
    )
    counting = snapshots[0].counting_tenants if snapshots else frozenset()
    return {key: snapshot.scopes for key, snapshot in zip(keys, snapshots, strict=True)}, counting


def risk_snapshots(requests: Sequence[SnapshotRequest], *, at: datetime) -> list[RiskSnapshot]:
    """:func:`risk_snapshot` of each request, in order, in one query for all of them: the recent orders and
    cancels, controls and PnL a scope counts do not depend on the instrument, so they are read (and parsed) once,
    not once per instrument. The OMS checks a batch whose legs go to many instruments; per instrument, the orders
    of the tenant's last minute were read again each time."""
    instruments = [_instrument(request.instrument) for request in requests]
    book_of = [
        {bot.id: (request.books or {}).get(bot.id) or order_book(bot) for bot in request.bots} for request in requests
    ]
    all_bots = {bot.id: bot for request in requests for bot in request.bots}
    if not all_bots:
        return [RiskSnapshot({}, {}) for _ in requests]
    triples = sorted(
        {
            (bot.id, str(books[bot.id]), instrument.id)
            for request, instrument, books in zip(requests, instruments, book_of, strict=True)
            for bot in request.bots
        }
    )
    tenant_ids = sorted({bot.tenant_id for bot in all_bots.values()})
    with connection.cursor() as cursor:
        cursor.execute(
            _RISK_STATE_SQL,
            {
                "tenants": tenant_ids,
                "bots": sorted(all_bots),
                "pos_bots": [bot_id for bot_id, _, _ in triples],
                "pos_books": [book for _, book, _ in triples],
                "pos_instruments": [instrument_id for _, _, instrument_id in triples],
                "instruments": sorted({instrument.id for instrument in instruments}),
                "sim_venues": list(settings.SIM_VENUE_FILL_MODELS),
                "at": at,
                "bot_window": _duplicate_window([bot.risk_limits for bot in all_bots.values()]),
                "cancels_since": at - RATE_WINDOW,
                "purpose": Order.Purpose.LEG,
                "day": at.date(),
                "max_window": MAX_DUPLICATE_WINDOW_SECONDS,
                "counting_limits": list(COUNTING_LIMITS),
            },
        )
        controls, bot_rows, tenant_rows, order_rows, bot_pnl_rows, tenant_pnl_rows = cursor.fetchone()

    bot_state = {bot_id: TradingState(state) for _, bot_id, state, _ in controls if bot_id is not None}
    tenant_control = {tenant_id: (state, limits) for tenant_id, bot_id, state, limits in controls if bot_id is None}
    counting = frozenset(t for t, (_, limits) in tenant_control.items() if counts_tenant_orders(limits))
    bot_position = {(i, bot_id, book): Decimal(quantity) for i, bot_id, book, quantity in bot_rows}
    tenant_position = {(tenant_id, i, book): Decimal(total) for tenant_id, i, book, total in tenant_rows}

    # Orders and cancels per (bot, book); the tenant's per (tenant, book).
    orders_by_bot: dict[tuple[int, str], list[RecentOrder]] = defaultdict(list)
    orders_by_tenant: dict[tuple[int, str], list[RecentOrder]] = defaultdict(list)
    cancels_by_bot: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    cancels_by_tenant: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    cancels_since = at - RATE_WINDOW
    for tenant_id, bot_id, symbol, side, quantity, price, created_at, cancelled_at, book in order_rows:
        created = datetime.fromisoformat(created_at)
        if created <= at:
            recent = RecentOrder(symbol, Side(side), Decimal(quantity), Decimal(price), created)
            orders_by_bot[bot_id, book].append(recent)
            orders_by_tenant[tenant_id, book].append(recent)
        if cancelled_at is not None:
            cancelled = datetime.fromisoformat(cancelled_at)
            if cancels_since < cancelled <= at:
                cancels_by_bot[bot_id, book].append(cancelled)
                cancels_by_tenant[tenant_id, book].append(cancelled)
    tenant_orders = {key: tuple(orders) for key, orders in orders_by_tenant.items() if key[0] in counting}
    tenant_cancels = {key: tuple(cancels) for key, cancels in cancels_by_tenant.items() if key[0] in counting}

    live_tenants = sorted({bot.tenant_id for bot in all_bots.values() if bot.stage == Stage.LIVE})
    autonomy = {tenant_id: autonomy_status(tenant_id) for tenant_id in live_tenants}

    bot_pnl = {(bot_id, book): Decimal(pnl) for bot_id, book, pnl in bot_pnl_rows}
    tenant_pnl = {(tenant_id, book): Decimal(total) for tenant_id, book, total in tenant_pnl_rows}

    snapshots = []
    for request, instrument, books in zip(requests, instruments, book_of, strict=True):
        tenant_scopes: dict[tuple[int, str], RiskScope] = {}  # one per tenant and book, shared by its bots
        scopes: dict[int, list[RiskScope]] = {}
        for bot in request.bots:
            book = str(books[bot.id])
            key = (bot.tenant_id, book)
            tenant_scope = tenant_scopes.get(key)
            if tenant_scope is None:
                tenant_state, tenant_limits = tenant_control.get(bot.tenant_id, (TradingState.ACTIVE, None))
                tenant_scope = tenant_scopes[key] = _scope(
                    "tenant",
                    tenant_limits,
                    {
                        "position": tenant_position.get((bot.tenant_id, instrument.id, book), Decimal(0)),
                        "daily_pnl": tenant_pnl.get(key, Decimal(0)),
                        "trading_state": TradingState(tenant_state),
                        "recent_orders": tenant_orders.get(key, ()),
                        "recent_cancels": tenant_cancels.get(key, ()),
                    },
                )
            scopes[bot.id] = [
                _scope(
                    "bot",
                    bot.risk_limits,
                    {
                        "position": bot_position.get((instrument.id, bot.id, book), Decimal(0)),
                        "daily_pnl": bot_pnl.get((bot.id, book), Decimal(0)),
                        "trading_state": autonomy_trading_state(bot, bot_state.get(bot.id, TradingState.ACTIVE)),
                        "recent_orders": tuple(orders_by_bot.get((bot.id, book), ())),
                        "recent_cancels": tuple(cancels_by_bot.get((bot.id, book), ())),
                        "autonomy": autonomy.get(bot.tenant_id) if bot.stage == Stage.LIVE else None,
                    },
                    factor=autonomy_limit_factor(bot),
                ),
                tenant_scope,
            ]
        positions = {
            bot.id: bot_position.get((instrument.id, bot.id, str(books[bot.id])), Decimal(0)) for bot in request.bots
        }
        snapshots.append(RiskSnapshot(scopes, positions, counting))
    return snapshots


def risk_scopes_for_bots(
    *, bots: Sequence, instrument: Instrument | str, at: datetime, books: dict[int, str] | None = None
) -> dict[int, list[RiskScope]]:
    """The scopes part of :func:`risk_snapshot` (what the OMS re-check needs)."""
    return risk_snapshot(bots=bots, instrument=instrument, at=at, books=books).scopes
