from datetime import datetime, timedelta, timezone

import pytest
from django.db import IntegrityError, transaction

from controlplane import tenancy
from traces.models import DecisionTrace, NoTradeTrace, ReasonCode, TickTrace
from traces.selectors import why_not
from traces.writer import TraceRow, write_traces

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)


def no_trade(bot_id, minute, reason, **details):
    return TraceRow(
        kind="no_trade",
        bot_id=bot_id,
        instrument="ESZ6",
        timeframe="1m",
        bar_ts=T0 + timedelta(minutes=minute),
        reason_code=reason,
        details=details,
    )


def decision(bot_id, minute, intent_id=None):
    return TraceRow(
        kind="decision",
        bot_id=bot_id,
        instrument="ESZ6",
        timeframe="1m",
        bar_ts=T0 + timedelta(minutes=minute),
        signal={"target": 1, "fast_ma": 10.5, "slow_ma": 10.1},
        intent_id=intent_id,
    )


def test_writes_both_kinds_and_a_rerun_of_the_same_tick_writes_nothing(tenant_a):
    rows = [decision(1, 0, intent_id=9), no_trade(2, 0, ReasonCode.NO_SIGNAL)]
    with tenancy.tenant_context(tenant_a.id):
        assert write_traces(rows) == 2
        assert write_traces(rows) == 0
        assert DecisionTrace.objects.get().intent_id == 9
        assert NoTradeTrace.objects.get().reason_code == "NO_SIGNAL"
        assert TickTrace.objects.count() == 2


def test_exactly_one_trace_per_bot_per_bar_even_across_kinds(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        write_traces([no_trade(1, 0, ReasonCode.DATA_STALE)])
        assert write_traces([decision(1, 0)]) == 0
        assert TickTrace.objects.get().kind == "no_trade"


def test_the_same_bar_in_a_replay_or_backtest_is_its_own_trace(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        write_traces([decision(1, 0)])
        replay = TraceRow(
            kind="decision", bot_id=1, instrument="ESZ6", timeframe="1m", bar_ts=T0, context="replay", run_ref=5
        )
        assert write_traces([replay]) == 1


def test_a_no_trade_trace_needs_a_reason_and_a_decision_has_none(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        with pytest.raises(IntegrityError), transaction.atomic():
            write_traces([TraceRow(kind="no_trade", bot_id=1, instrument="ESZ6", timeframe="1m", bar_ts=T0)])


def test_rows_land_in_the_tenant_in_context_only(tenant_a, tenant_b):
    with tenancy.tenant_context(tenant_a.id):
        write_traces([decision(1, 0)])
    with tenancy.tenant_context(tenant_b.id):
        assert TickTrace.objects.count() == 0
        assert TickTrace.unscoped.count() == 0


def test_writing_without_a_tenant_is_refused():
    with pytest.raises(tenancy.TenantContextMissing):
        write_traces([decision(1, 0)])


def test_trace_rows_carry_the_trace_id_in_context(tenant_a):
    from controlplane.trace import bind_trace_id, clear_trace_id

    bind_trace_id("tick-batch-trace-01")
    try:
        with tenancy.tenant_context(tenant_a.id):
            write_traces([decision(1, 0)])
            assert TickTrace.objects.get().trace_id == "tick-batch-trace-01"
    finally:
        clear_trace_id()


def test_why_not_says_the_reason_since_when_and_what_would_change_it(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        assert why_not(bot_id=1) is None
        write_traces(
            [
                no_trade(1, 0, ReasonCode.MARKET_CLOSED),
                decision(1, 1),
                no_trade(1, 2, ReasonCode.RISK_BLOCKED, limit="max_position", value=3, maximum=2),
                no_trade(1, 3, ReasonCode.RISK_BLOCKED, limit="max_position", value=3, maximum=2),
            ]
        )
        answer = why_not(bot_id=1)
    assert answer["trading"] is False
    assert answer["reason_code"] == "RISK_BLOCKED"
    assert answer["since"] == T0 + timedelta(minutes=2)
    assert answer["details"]["limit"] == "max_position"
    assert "limit" in answer["what_would_change_it"]


def test_why_not_after_a_decision_says_trading(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        write_traces([no_trade(1, 0, ReasonCode.NO_SIGNAL), decision(1, 1)])
        answer = why_not(bot_id=1)
    assert answer["trading"] is True and answer["reason_code"] is None


def test_fresh_rows_are_written_and_a_conflicting_fresh_write_skips_the_existing_ones_and_keeps_the_transaction(
    tenant_a,
):
    """``fresh`` (the tick: rows its batch read found untraced) inserts without ON CONFLICT; if another run traced
    some of the same bots in between, the write still succeeds with the new ones only, and the caller's transaction
    goes on."""
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        assert write_traces([no_trade(1, 0, ReasonCode.NO_SIGNAL), decision(2, 0)], fresh=True) == 2
        assert (
            write_traces([no_trade(2, 0, ReasonCode.NO_SIGNAL), no_trade(3, 0, ReasonCode.NO_SIGNAL)], fresh=True) == 1
        )
        assert write_traces([decision(4, 0)], fresh=True) == 1
        assert sorted(TickTrace.objects.values_list("bot_id", "kind")) == [
            (1, "no_trade"),
            (2, "decision"),
            (3, "no_trade"),
            (4, "decision"),
        ]


def test_a_fresh_write_still_refuses_a_row_that_breaks_a_rule(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        with pytest.raises(IntegrityError), transaction.atomic():
            write_traces(
                [TraceRow(kind="no_trade", bot_id=1, instrument="ESZ6", timeframe="1m", bar_ts=T0)], fresh=True
            )
        assert not TickTrace.objects.exists()


def _delete_tenant_row(tenant_id) -> None:
    """As raw SQL, the way no service deletes a tenant, with the deferred checks made immediate (as COMMIT would)."""
    from django.db import connection

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM controlplane_tenant WHERE id = %s", [tenant_id])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_a_tenant_with_traces_cannot_be_deleted_from_any_tenants_context_and_one_without_can(tenant_a):
    """The trace table has no foreign key to its tenant (its per-row check was most of the tick's COMMIT); the
    tenant table's trigger still refuses to delete a tenant whose traces exist, whoever is in context, including
    nobody."""
    from controlplane.models import Tenant

    traced = Tenant.objects.create(slug="traced", name="Traced")
    bare = Tenant.objects.create(slug="bare", name="Bare")
    with tenancy.tenant_context(traced.id):
        write_traces([no_trade(1, 0, ReasonCode.NO_SIGNAL)])
    for context in (None, tenant_a.id, traced.id):
        with tenancy.tenant_context(context), pytest.raises(IntegrityError, match="has traces"):
            _delete_tenant_row(traced.id)
    with tenancy.tenant_context(tenant_a.id):
        _delete_tenant_row(bare.id)
        assert tenancy.current_tenant_id() == tenant_a.id
    assert not Tenant.objects.filter(id=bare.id).exists()
    with tenancy.tenant_context(traced.id):
        assert TickTrace.objects.count() == 1  # and the tenant's context is its own again after the trigger looked


def test_the_trigger_restores_the_deleting_transactions_tenant(tenant_a):
    """The trigger looks as the deleted tenant and gives the transaction its own tenant back: RLS afterwards
    still shows only the deleting tenant's rows."""
    from django.db import connection

    from controlplane.models import Tenant

    bare = Tenant.objects.create(slug="bare2", name="Bare")
    with tenancy.tenant_context(tenant_a.id):
        write_traces([no_trade(5, 0, ReasonCode.NO_SIGNAL)])
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM controlplane_tenant WHERE id = %s", [bare.id])
            cursor.execute("SELECT current_setting('app.tenant_id')")
            assert cursor.fetchone()[0] == str(tenant_a.id)
            assert list(TickTrace.objects.values_list("bot_id", flat=True)) == [5]


def test_rows_sharing_their_bar_and_run_and_rows_that_do_not_are_stored_alike(tenant_a):
    """A write whose rows share bar, context, run, timeframe and trace id copies the per-row columns only and
    gives the shared ones to the move once; each row must read back as it was given, shared or not, and a row
    without a trace id gets the bound one either way."""
    from controlplane.trace import current_trace_id

    shared = [
        TraceRow(
            kind="no_trade",
            bot_id=bot_id,
            instrument="ESZ6",
            timeframe="5m",
            bar_ts=T0,
            context="replay",
            run_ref=42,
            reason_code="NO_SIGNAL",
            inputs={"position": 1.0},
            risk_checks=[{"limit": "max_position", "passed": True}],
        )
        for bot_id in (1, 2)
    ]
    mixed = [decision(3, 0), no_trade(3, 1, ReasonCode.NO_SIGNAL, why="x")]
    mixed[1].trace_id = "given-trace-id"
    with tenancy.tenant_context(tenant_a.id):
        assert write_traces(shared, fresh=True) == 2
        assert write_traces(iter(mixed)) == 2
        got = {
            (row["bot_id"], row["bar_ts"]): row
            for row in TickTrace.objects.values(
                "bot_id",
                "kind",
                "context",
                "run_ref",
                "timeframe",
                "bar_ts",
                "reason_code",
                "details",
                "inputs",
                "signal",
                "risk_checks",
                "trace_id",
            )
        }
    for bot_id in (1, 2):
        assert got[(bot_id, T0)] == {
            "bot_id": bot_id,
            "kind": "no_trade",
            "context": "replay",
            "run_ref": 42,
            "timeframe": "5m",
            "bar_ts": T0,
            "reason_code": "NO_SIGNAL",
            "details": {},
            "inputs": {"position": 1.0},
            "signal": {},
            "risk_checks": [{"limit": "max_position", "passed": True}],
            "trace_id": current_trace_id(),
        }
    assert got[(3, T0)]["context"] == "tick" and got[(3, T0)]["run_ref"] is None
    assert got[(3, T0)]["signal"] == {"target": 1, "fast_ma": 10.5, "slow_ma": 10.1}
    assert got[(3, T0)]["trace_id"] == current_trace_id()
    later = got[(3, T0 + timedelta(minutes=1))]
    assert (later["details"], later["trace_id"], later["timeframe"]) == ({"why": "x"}, "given-trace-id", "1m")


@pytest.mark.parametrize("fresh", [True, False])
def test_a_shared_write_gives_each_row_its_own_json_whether_rows_repeat_a_text_or_not(tenant_a, fresh):
    """A shared write sends each distinct JSON text once and each row its text's number: rows that share some
    texts and differ in others (the same details with other signals, one inputs dict for several rows, a value
    equal to another column's) must each read back their own four values, through either move."""
    held = {"position": 2.0}
    rows = [
        TraceRow(
            kind="no_trade",
            bot_id=bot_id,
            instrument="ESZ6",
            timeframe="1m",
            bar_ts=T0,
            reason_code="NO_SIGNAL",
            details={"strategy_reason": "flat" if bot_id % 2 else "below"},
            inputs=held if bot_id % 3 else {"position": float(bot_id)},
            signal={"target": None, "fast_ma": bot_id / 7, "quote": "it's"},
            risk_checks=[] if bot_id % 4 else [{"position": 2.0}],
        )
        for bot_id in range(1, 13)
    ]
    with tenancy.tenant_context(tenant_a.id):
        assert write_traces(rows, fresh=fresh) == 12
        got = {
            row["bot_id"]: row
            for row in TickTrace.objects.values("bot_id", "details", "inputs", "signal", "risk_checks")
        }
    for row in rows:
        assert got[row.bot_id] == {
            "bot_id": row.bot_id,
            "details": row.details,
            "inputs": row.inputs,
            "signal": row.signal,
            "risk_checks": row.risk_checks,
        }


@pytest.mark.parametrize("fresh", [True, False])
def test_a_shared_write_keeps_each_rows_own_columns_whatever_their_text(tenant_a, fresh):
    """A shared write sends its per-row columns as arrays: a symbol with the characters an array literal gives a
    meaning to (quotes, backslashes, commas, braces, the word NULL), both kinds, a missing reason, intent or bot
    must each read back as given, through either move."""
    symbols = ['A"B', "C\\D", "E,F", "{G}", "NULL", "", " h "]
    rows = [
        TraceRow(
            kind="decision" if n % 2 else "no_trade",
            bot_id=None if n == 3 else n,
            instrument=symbol,
            timeframe="1m",
            bar_ts=T0,
            reason_code=None if n % 2 else ReasonCode.NO_SIGNAL,
            intent_id=100 + n if n % 2 else None,
        )
        for n, symbol in enumerate(symbols)
    ]
    with tenancy.tenant_context(tenant_a.id):
        assert write_traces(rows, fresh=fresh) == len(rows)
        got = set(TickTrace.objects.values_list("kind", "bot_id", "instrument", "reason_code", "intent_id"))
    assert got == {(row.kind, row.bot_id, row.instrument, row.reason_code, row.intent_id) for row in rows}
