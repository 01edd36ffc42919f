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
from execution.orders import oms, recovery
from execution.orders.intents import LegSpec, submit_intent
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy, sell
from tests.execution.test_oms_batching import _setup
from tests.execution.venues import ExchangeVenue, exchange_venues, timing_out
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


class _ProbingVenue(ExchangeVenue):
    """An exchange whose lookups and cancels ask, from another connection, for the key-share lock an order insert's
    foreign-key check takes on the instrument and bot rows, while the OMS is waiting for its answer."""

    def __init__(self, name, answer, rows):
        super().__init__(name, answer)
        self.rows, self.probes = rows, []

    def _probe(self):
        def other_transaction():
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    for table, row_id in self.rows:
                        cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR KEY SHARE NOWAIT", [row_id])
                self.probes.append("granted")
            except Exception as error:  # reported by the assertion below
                self.probes.append(repr(error))
            finally:
                connections.close_all()

        thread = threading.Thread(target=other_transaction)
        thread.start()
        thread.join()

    def lookup_order(self, *, client_order_id, venue_order_id=None):
        self._probe()
        return super().lookup_order(client_order_id=client_order_id, venue_order_id=venue_order_id)

    def cancel_order(self, *, client_order_id, venue_order_id):
        self._probe()
        return super().cancel_order(client_order_id=client_order_id, venue_order_id=venue_order_id)


def test_the_recovery_sweep_and_a_failed_leg_hold_no_instrument_or_bot_row_while_a_venue_answers(
    django_db_setup, committed_db, settings
):
    """The recovery sweep looks an uncertain order up at its venue, and a failed leg's policy cancels the intent's
    other legs at theirs, each with the order (and intent) locked. Locked with their instrument, leg or bot joined
    (``select_for_update`` without ``of``), those rows were locked FOR UPDATE for as long as the venue took to
    answer, and every OMS batch inserting orders of that instrument or bot waited for it at its COMMIT."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("venue-wait-locks")
    es = Instrument.objects.get(symbol="ES")
    rows = [("execution_instrument", es.id), ("bots_bot", bots[0].id)]
    kept, lost = _ProbingVenue("exchange-kept", None, rows), _ProbingVenue("exchange-lost", timing_out, rows)
    with exchange_venues(kept, lost), tenancy.tenant_context(tenant.id):
        intent = submit_intent(
            bot=bots[0],
            legs=[
                LegSpec("exchange-kept", "ES", "buy", Decimal(1)),
                LegSpec("exchange-lost", "ES", "sell", Decimal(1)),
            ],
            idempotency_key="probe",
            source="tick",
            bar_ts=T0,
        ).intent
        oms.process_pending_intents()
        outcome = recovery.resolve_unacknowledged_orders(older_than=timedelta(0))
        assert outcome["not_found"] == [f"cp-{intent.pk}-1"]
        assert lost.lookups and kept.cancelled == [f"cp-{intent.pk}-0"]
        assert set(lost.probes) == {"granted"} and kept.probes == ["granted"]
        intent.refresh_from_db()
        assert intent.status == TradeIntent.Status.FAILED
