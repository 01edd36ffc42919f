"""Intents, the OMS as the only writer, risk refusals recorded, and sim fills end to end."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import AuditEvent
from execution.orders import oms
from execution.orders.intents import submit_intent
from execution.models import Fill, Order, RiskIncident, StrategyPosition, TradeIntent, VenueInventory
from execution.risk.positions import bot_pnl
from execution.risk.state import risk_snapshot
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy, sell
from traces.models import ProfitVariables

pytestmark = pytest.mark.django_db


def _submit(bot, key="k1", legs=None, **kwargs):
    kwargs.setdefault("bar_ts", T0)
    return submit_intent(bot=bot, legs=legs or [buy()], idempotency_key=key, source="tick", **kwargs)


def test_direct_insert_into_orders_is_refused_by_the_trigger(tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(bot).intent
        leg = intent.legs.get()
        with pytest.raises(DatabaseError, match="only the OMS writes orders and fills"), transaction.atomic():
            Order.objects.create(
                intent=intent,
                leg=leg,
                bot=bot,
                venue="sim",
                instrument=es_bars,
                client_order_id="rogue",
                side="buy",
                quantity=1,
                order_type="market",
                not_before=T0,
                bot_stage="LAB",
                trace_id="t",
            )
        with pytest.raises(DatabaseError, match="only the OMS"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO execution_fill (tenant_id, order_id, bot_id, venue, instrument_id, "
                "venue_fill_id, side, quantity, price, fee, slippage, realized_pnl, bot_stage, ts, "
                "trace_id, created_at) VALUES (%s, 1, %s, 'sim', %s, 'x', 'buy', 1, 1, 0, 0, 0, 'LAB', "
                "now(), 't', now())",
                [tenant_a.id, bot.id, es_bars.id],
            )
        oms.process_pending_intents()
        order = Order.objects.get()
        with pytest.raises(DatabaseError, match="only the OMS"), transaction.atomic():
            Order.objects.filter(pk=order.pk).update(status="FILLED")
        assert Order.objects.get().status == Order.Status.WORKING


def test_the_runtime_role_cannot_forge_the_oms_mark_and_the_oms_still_writes(tenant_a, es_bars, trading_bot):
    """The old mark, ``app.writer = 'oms'``, is one set_config away for the runtime role: it no longer opens the
    trigger, and the table holding the real mark is out of the runtime role's reach."""
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(bot).intent
        leg = intent.legs.get()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == connection.settings_dict["USER"] != "postgres"
        with pytest.raises(DatabaseError, match="only the OMS"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('app.writer', 'oms', true)")
            Order.objects.create(
                intent=intent,
                leg=leg,
                bot=bot,
                venue="sim",
                instrument=es_bars,
                client_order_id="forged",
                side="buy",
                quantity=1,
                order_type="market",
                not_before=T0,
                bot_stage="LAB",
                trace_id="t",
            )
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO cp_private.oms_write_txn (txid) VALUES (pg_current_xact_id())")
        assert not Order.objects.exists()
        oms.process_pending_intents()
        assert Order.objects.get().client_order_id == oms.client_order_id(leg)


def test_same_key_same_body_returns_the_first_intent_other_body_is_refused(tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        first = _submit(bot, key="abc", legs=[buy("1")])
        again = _submit(bot, key="abc", legs=[buy("1.000")])
        assert first.created and not again.created and again.intent.pk == first.intent.pk
        with pytest.raises(ControlPlaneError) as error:
            _submit(bot, key="abc", legs=[buy("2")])
        assert error.value.code == ErrorCode.IDEMPOTENCY_KEY_REUSED
        assert TradeIntent.objects.count() == 1


def test_validation_errors_name_the_leg_field(tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id), pytest.raises(ControlPlaneError) as error:
        _submit(bot, legs=[buy("0"), sell("1", order_type="limit")])
    assert set(error.value.details) == {"legs[0].quantity", "legs[1].limit_price"}
    with tenancy.tenant_context(tenant_a.id):
        assert TradeIntent.objects.count() == 0


@pytest.mark.parametrize(
    "limits, legs, limit",
    [
        ({"max_order_size": 1}, [buy("2")], "max_order_size"),
        ({"max_position": 1}, [buy("2")], "max_position"),
        ({"max_notional": 1000}, [buy("1")], "max_notional"),  # 1 x 100.5 x 50 = 5025
        ({"allowed_instruments": ["NQ"]}, [buy("1")], "allowed_instruments"),
    ],
)
def test_a_refusal_is_stored_rejected_with_the_limit_and_values(tenant_a, es_bars, trading_bot, limits, legs, limit):
    bot = trading_bot(risk_limits=limits)
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(bot, legs=legs).intent
        assert intent.status == TradeIntent.Status.REJECTED
        assert intent.rejection["limit"] == limit and intent.rejection["scope"] == "bot"
        assert intent.rejection["values"] and intent.rejection["refusals"][0]["passed"] is False
        # Size refusals are routine; position, notional and instrument refusals open an incident.
        assert RiskIncident.objects.filter(bot=bot, kind=limit, status="OPEN").exists() == (limit != "max_order_size")
        assert AuditEvent.objects.filter(
            action="intent.status", resource_id=str(intent.pk), after_state__status="REJECTED"
        ).exists()
        assert oms.process_pending_intents() == 0 and not Order.objects.exists()


def test_rate_and_duplicate_limits_refuse_at_submit(tenant_a, es_bars, trading_bot):
    bot = trading_bot(risk_limits={"duplicate_window_seconds": 300})
    with tenancy.tenant_context(tenant_a.id):
        _submit(bot, key="a")
        oms.process_pending_intents()
        second = _submit(bot, key="b").intent
        assert second.status == "REJECTED" and second.rejection["limit"] == "duplicate_order"
        assert not RiskIncident.objects.exists()  # routine refusals open no incident
    bot2 = trading_bot(name="rate", risk_limits={"max_orders_per_minute": 1})
    with tenancy.tenant_context(tenant_a.id):
        _submit(bot2, key="c")
        oms.process_pending_intents()
        third = _submit(bot2, key="d", legs=[buy("3")]).intent
        assert third.rejection["limit"] == "max_orders_per_minute"


def test_the_oms_rechecks_kill_state_before_sending(tenant_a, owner_a, es_bars, trading_bot):
    from bots.services import bot_kill

    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(bot).intent
        assert intent.status == "PENDING"
        bot_kill(bot_id=bot.id, actor=owner_a, reason="test")
        oms.process_pending_intents()
        intent.refresh_from_db()
        assert intent.status in ("REJECTED", "CANCELLED")
        assert not Order.objects.filter(status__in=Order.OPEN_STATUSES).exists()


def test_tenant_halted_refuses_and_reduce_only_lets_reducing_orders_pass(tenant_a, es_bars, trading_bot):
    from execution.models import TradingControl

    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        TradingControl.objects.create(state="HALTED", set_by="test", reason="test")
        intent = _submit(bot, key="h").intent
        assert intent.rejection["limit"] == "trading_state" and intent.rejection["scope"] == "tenant"
        TradingControl.objects.filter(bot__isnull=True).update(state="REDUCE_ONLY")
        assert _submit(bot, key="r").intent.status == "REJECTED"  # flat: buying grows exposure


def test_sim_fill_end_to_end_next_open_with_slippage_fees_position_inventory_pnl(
    tenant_a, es_bars, trading_bot, settings
):
    settings.SIM_VENUE_FILL_MODELS = {"sim": {"slippage_ticks": 1, "fee_per_unit": "2.5"}}
    bot, idle = trading_bot(), trading_bot(name="idle")
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(bot, legs=[buy("2")], bar_ts=T0).intent
        assert oms.process_pending_intents() == 1
        intent.refresh_from_db()
        order = Order.objects.get()
        assert intent.status == "WORKING" and order.status == "WORKING"
        assert order.client_order_id == f"cp-{intent.pk}-0" and order.venue_order_id == f"sim-cp-{intent.pk}-0"
        # The decision bar itself never fills a next-open order; no bar, no fill.
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0) == 0
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(hours=5)) == 0
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1)) == 1
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1)) == 0
        fill = Fill.objects.get()
        # Bar 1 opens at 101; one tick (0.25) adverse; fee 2 x 2.5; slippage 0.25 x 2 x 50.
        assert (fill.price, fill.fee, fill.slippage) == (Decimal("101.25"), Decimal("5"), Decimal("25"))
        intent.refresh_from_db()
        assert intent.status == "FILLED"
        assert risk_snapshot(bots=[bot, idle], instrument=es_bars, at=timezone.now()).positions == {
            bot.id: Decimal(2),
            idle.id: Decimal(0),
        }
        assert VenueInventory.objects.get(venue="sim", asset="ES").quantity == 2
        # Sell 2 on the next bar: realized = (102 - 0.25 - 101.25) x 2 x 50 - fees 5 - 5 = 40
        _submit(bot, key="k2", legs=[sell("2")], bar_ts=T0 + timedelta(minutes=1))
        oms.process_pending_intents()
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=2))
        position = StrategyPosition.objects.get(bot=bot)
        assert position.quantity == 0 and position.realized_pnl == Decimal("40")
        day = ProfitVariables.objects.get(bot_id=bot.id)
        assert day.pnl == Decimal("40") and day.fills == 2 and day.win_rate == 1.0
        assert day.turnover == Decimal("101.25") * 100 + Decimal("101.75") * 100
        pnl = bot_pnl(bot=bot, book="paper")
        assert pnl["realized_pnl"] == "40.000000000" and pnl["unrealized_pnl"] == "0" and pnl["book"] == "paper"
        assert VenueInventory.objects.get(venue="sim", asset="ES").book == "paper"
        assert bot_pnl(bot=bot, book="live")["positions"] == []  # sim fills never reach the live book


def test_partial_fills_by_volume_share_and_unrealized_pnl_from_the_latest_bar(tenant_a, es_bars, trading_bot, settings):
    settings.SIM_VENUE_FILL_MODELS = {"sim": {"max_volume_share": 0.5}}
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        _submit(bot, legs=[buy("8")])
        oms.process_pending_intents()
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))  # volume 11
        order = Order.objects.get()
        assert order.filled_quantity == 5 and order.status == "PARTIALLY_FILLED"
        assert TradeIntent.objects.get().status == "PARTIALLY_FILLED"
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=2))  # volume 12
        order.refresh_from_db()
        assert order.filled_quantity == 8 and order.status == "FILLED"
        assert order.average_price == (Decimal(101) * 5 + Decimal(102) * 3) / 8
        pnl = bot_pnl(bot=bot, book="paper")
        # Latest complete bar (bar 9) closes at 109.5.
        assert Decimal(pnl["unrealized_pnl"]) == (Decimal("109.5") - order.average_price) * 8 * 50


def test_unrealized_pnl_is_null_without_a_bar(tenant_a, trading_bot, es):
    from tests.execution.helpers import store_bars

    bot = trading_bot()
    store_bars(es, T0, 2)
    with tenancy.tenant_context(tenant_a.id):
        _submit(bot)
        oms.process_pending_intents()
        match_working_orders(instrument=es, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
        assert StrategyPosition.objects.get().quantity == 1
    with tenancy.tenant_context(tenant_a.id):
        pnl = bot_pnl(bot=bot, book="paper", as_of=T0)  # before any bar closed
        assert pnl["unrealized_pnl"] is None and pnl["positions"][0]["unrealized_pnl"] is None


def test_the_pnl_api_reports_a_stale_mark_with_its_bar_and_says_so(tenant_a, es_bars, trading_bot, api_owner_a):
    """Issue 13: PnL marked open positions at the latest bar however old, and said nothing."""
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        _submit(bot, legs=[buy("1")])
        oms.process_pending_intents()
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
    body = api_owner_a.get(f"/api/bots/{bot.id}/pnl").json()  # now: the bars of T0 are days old
    assert body["book"] == "paper" and body["stale"] is True and body["stale_marks"] == ["ES"]
    (row,) = body["positions"]
    assert row["mark_stale"] is True and row["mark"] == "109.500000000" and row["mark_timeframe"] == "1m"
    assert row["mark_bar_ts"] == (T0 + timedelta(minutes=9)).isoformat()
    with tenancy.tenant_context(tenant_a.id):
        fresh = bot_pnl(bot=bot, book="paper", as_of=T0 + timedelta(minutes=10))
    assert fresh["stale"] is False and fresh["positions"][0]["mark_stale"] is False
