"""Sim fills of one bar are booked in one batch: the same books as one fill at a time, in a constant number of
statements however many orders the bar fills."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.models import Fill, Instrument, Order, StrategyPosition, TradeIntent, VenueInventory
from execution.orders import oms
from execution.orders.intents import LegSpec, submit_intent
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy, sell
from tests.execution.test_oms_batching import _setup
from traces.models import ProfitVariables


@pytest.mark.django_db
def test_two_fills_of_one_position_on_one_bar_compose_as_one_at_a_time(tenant_a, es_bars, trading_bot, settings):
    settings.SIM_VENUE_FILL_MODELS = {"sim": {"slippage_ticks": 1, "fee_per_unit": "2.5"}}
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        first = submit_intent(bot=bot, legs=[buy("2")], idempotency_key="b", source="tick", bar_ts=T0).intent
        second = submit_intent(bot=bot, legs=[sell("3")], idempotency_key="s", source="tick", bar_ts=T0).intent
        spread = submit_intent(
            bot=bot, legs=[buy("1"), sell("1")], idempotency_key="two-legs", source="tick", bar_ts=T0
        ).intent
        assert oms.process_pending_intents() == 3
        bar = T0 + timedelta(minutes=1)  # opens at 101: buys at 101.25, sells at 100.75 (one tick adverse)
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=bar) == 4
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=bar) == 0  # each bar once
        # In id order: +2 @101.25; -3 @100.75 closes 2 (-0.5 x 2 x 50 = -50) and opens -1 @100.75;
        # +1 @101.25 closes that (-0.5 x 50 = -25); -1 @100.75 opens -1 @100.75. Fees 2.5 per unit, 7 units.
        position = StrategyPosition.objects.get(bot=bot)
        assert (position.quantity, position.average_price) == (Decimal(-1), Decimal("100.75"))
        assert position.fees == Decimal("17.5") and position.realized_pnl == Decimal(-75) - Decimal("17.5")
        assert sorted(Fill.objects.values_list("realized_pnl", flat=True)) == sorted(
            [Decimal(-5), Decimal(-50) - Decimal("7.5"), Decimal(-25) - Decimal("2.5"), Decimal("-2.5")]
        )
        day = ProfitVariables.objects.get(bot_id=bot.id)
        assert (day.fills, day.closing_trades, day.winning_trades) == (4, 2, 0)
        assert day.pnl == position.realized_pnl and day.fees == Decimal("17.5")
        assert day.turnover == (Decimal("101.25") * 3 + Decimal("100.75") * 4) * 50
        assert VenueInventory.objects.get(venue="sim", asset="ES").quantity == -1
        assert set(TradeIntent.objects.values_list("status", flat=True)) == {"FILLED"}
        assert set(Order.objects.values_list("status", flat=True)) == {"FILLED"}
        for intent in (first, second, spread):
            moves = AuditEvent.objects.filter(action="intent.status", resource_id=str(intent.pk))
            assert [m.after_state["status"] for m in moves.order_by("id")] == ["ACCEPTED", "WORKING", "FILLED"]


@pytest.mark.django_db
def test_a_bar_filling_many_orders_takes_a_constant_number_of_statements(tenant_a, es_bars, trading_bot):
    bots = [trading_bot(name=f"many-{n}") for n in range(15)]
    with tenancy.tenant_context(tenant_a.id):
        for n, bot in enumerate(bots):  # three fill on bar 1, twelve on bar 2
            decided = T0 if n < 3 else T0 + timedelta(minutes=1)
            submit_intent(bot=bot, legs=[buy("1")], idempotency_key=f"m{n}", source="tick", bar_ts=decided)
        oms.process_pending_intents()
        statements = []
        for bar, fills in ((T0 + timedelta(minutes=1), 3), (T0 + timedelta(minutes=2), 12)):
            with CaptureQueriesContext(connection) as queries:
                assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=bar) == fills
            statements.append(len(queries))
        assert statements[0] == statements[1] <= 30
        assert StrategyPosition.objects.filter(quantity=1).count() == 15
        assert TradeIntent.objects.filter(status="FILLED").count() == 15


def test_booking_a_bars_fills_leaves_the_instrument_row_unlocked(django_db_setup, committed_db, settings):
    """While a bar's fills are being booked, an OMS batch of other intents on the same instrument can commit: its
    orders' foreign-key check takes a key-share lock on the instrument row. Locking the orders with their instrument
    joined (``select_for_update`` without ``of``) also locked the instrument row FOR UPDATE until the booking
    committed, so every OMS batch of the instrument waited for the bar feeder at its COMMIT, with the tenant's
    check lock held (the throughput bench's main wait)."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("fill-lock")
    es = Instrument.objects.get(symbol="ES")
    probe: list = []

    def other_transaction():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT id FROM execution_instrument WHERE id = %s FOR KEY SHARE NOWAIT", [es.id])
                probe.append(cursor.fetchall())
        except Exception as error:  # reported by the assertion below
            probe.append(error)
        finally:
            connections.close_all()

    with tenancy.tenant_context(tenant.id):
        submit_intent(
            bot=bots[0], legs=[LegSpec("sim", "ES", "buy", Decimal(1))], idempotency_key="f", source="tick", bar_ts=T0
        )
        assert oms.process_pending_intents() == 1
        with transaction.atomic():  # the booking's locks are held until this commits
            assert match_working_orders(instrument=es, timeframe="1m", bar_ts=T0 + timedelta(minutes=1)) == 1
            thread = threading.Thread(target=other_transaction)
            thread.start()
            thread.join()
        assert probe == [[(es.id,)]]
        assert Order.objects.get().status == Order.Status.FILLED
