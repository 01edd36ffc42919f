"""Paper fills follow the bars: storing bars fills the working sim orders on them, whether or not a bot ticks the
instrument, once per order and bar."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from controlplane import tenancy
from execution.orders import oms
from execution.models import Fill, Order
from execution.tick.batches import floor_to_timeframe
from execution.orders.paper_venue import match_working_orders
from tests.execution.helpers import store_bars

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)
BUY_ONE_ES = [{"venue": "sim", "symbol": "ES", "side": "buy", "quantity": "1"}]


def _working_api_buy(client, tenant, bot, key: str):
    """An API intent, sent by the OMS: WORKING at the sim venue from its arrival (now) on."""
    response = client.post("/api/intents", {"bot": bot.id, "idempotency_key": key, "legs": BUY_ONE_ES}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "PENDING", response.json()
    with tenancy.tenant_context(tenant.id):
        oms.process_pending_intents()
        order = Order.objects.get(intent_id=response.json()["id"])
    assert order.status == Order.Status.WORKING
    return order


def test_an_api_intent_on_an_instrument_no_bot_ticks_fills_when_the_next_bars_are_imported(
    api_operator_a, tenant_a, es_bars, trading_bot
):
    bot = trading_bot()  # no runner: nothing ticks ES
    order = _working_api_buy(api_operator_a, tenant_a, bot, "paper-1")
    first_after_arrival = floor_to_timeframe(timezone.now(), "1m") + MINUTE

    result = store_bars(es_bars, first_after_arrival, 3)  # opens 100, 101, 102
    assert result.inserted == 3
    with tenancy.tenant_context(tenant_a.id):
        fill = Fill.objects.get()
        order.refresh_from_db()
    assert fill.order_id == order.id and fill.quantity == 1
    assert (fill.price, fill.ts) == (Decimal("100"), first_after_arrival)  # the next bar's open: the default model
    assert order.status == Order.Status.FILLED
    assert api_operator_a.get(f"/api/intents/{order.intent_id}").json()["status"] == "FILLED"


def test_bars_stored_or_matched_twice_fill_nothing_twice(api_operator_a, tenant_a, es_bars, trading_bot):
    order = _working_api_buy(api_operator_a, tenant_a, trading_bot(), "paper-2")
    first_after_arrival = floor_to_timeframe(timezone.now(), "1m") + MINUTE
    store_bars(es_bars, first_after_arrival, 1)
    store_bars(es_bars, first_after_arrival, 1)  # the same bar again: nothing new is stored or matched
    with tenancy.tenant_context(tenant_a.id):
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=first_after_arrival) == 0
        assert Fill.objects.filter(order=order).count() == 1
