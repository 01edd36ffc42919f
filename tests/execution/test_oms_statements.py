"""What a batch of the OMS costs in statements (issue 18, "the OMS at arbitrage speed"): a claimed batch is checked,
written, sent and recorded in a number of statements that does not grow with the number of intents in it, and the
set-based paths give every intent and order what the one-at-a-time paths gave them."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.models import Order, TradeIntent
from execution.orders import oms
from execution.orders.intent_batches import IntentRequest, submit_intents
from execution.orders.paper_venue import SimVenue
from integrations.venues.base import VenueOrderRequest, VenueOrderStatus
from tests.execution.conftest import T0, buy, sell

pytestmark = pytest.mark.django_db


def _submit(bots, count, prefix):
    """Intent n: bot n mod len(bots), one in three with a second (sell) leg."""
    with tenancy.tenant_context(bots[0].tenant_id):
        return submit_intents(
            [
                IntentRequest(
                    bot=bots[n % len(bots)],
                    legs=[buy()] if n % 3 else [buy(), sell()],
                    idempotency_key=f"{prefix}-{n}",
                    bar_ts=T0,
                )
                for n in range(count)
            ],
            source="tick",
        )


def _oms_statements(tenant, **kwargs) -> tuple[int, int]:
    with tenancy.tenant_context(tenant.id), CaptureQueriesContext(connection) as queries:
        claimed = oms.process_pending_intents(**kwargs)
    return claimed, len(queries)


def test_a_batch_costs_the_same_statements_whatever_its_size(tenant_a, es_bars, trading_bot):
    bots = [trading_bot(name=f"size-{n}") for n in range(4)]
    _submit(bots, 3, "small")
    small = _oms_statements(tenant_a, batch_size=50)
    _submit(bots, 24, "large")
    large = _oms_statements(tenant_a, batch_size=50)
    assert small[0] == 3 and large[0] == 24
    # Old code: a statement (in a transaction of its own) per sim order sent, at least.
    assert large[1] == small[1], (small, large)
    with tenancy.tenant_context(tenant_a.id):
        assert set(TradeIntent.objects.values_list("status", flat=True)) == {TradeIntent.Status.WORKING}
        orders = list(Order.objects.values_list("client_order_id", "status", "venue_order_id"))
        assert len(orders) == 27 + 9  # one in three has two legs
        assert all(status == Order.Status.WORKING and venue_id == f"sim-{cid}" for cid, status, venue_id in orders)
        moves = AuditEvent.objects.filter(action="intent.status").values_list("resource_id", "after_state")
        assert sorted(after["status"] for _, after in moves) == ["ACCEPTED"] * 27 + ["WORKING"] * 27


def _request(client_order_id, symbol):
    return VenueOrderRequest(
        client_order_id=client_order_id, symbol=symbol, side="buy", quantity=Decimal(1), order_type="market"
    )


def test_the_sim_venue_answers_a_batch_as_it_answers_each_order_in_one_statement(tenant_a, es_bars):
    venue = SimVenue("sim")
    requests = [_request("cp-1-0", "ES"), _request("cp-2-0", "NOPE"), _request("cp-3-0", "ES")]
    with tenancy.tenant_context(tenant_a.id):
        with CaptureQueriesContext(connection) as queries:
            batch = venue.place_orders(requests)
        one_by_one = [venue.place_order(request) for request in requests]
    assert len([q for q in queries if "execution_instrument" in q["sql"]]) == 1
    assert batch == one_by_one
    assert [ack.status for ack in batch] == [
        VenueOrderStatus.WORKING,
        VenueOrderStatus.REJECTED,
        VenueOrderStatus.WORKING,
    ]
    assert batch[0].venue_order_id == "sim-cp-1-0" and batch[1].reason == "unknown instrument NOPE"
