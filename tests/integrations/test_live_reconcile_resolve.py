"""Flatten of a LIVE Tradovate bot flagged by a reconcile mismatch, against a local server in Tradovate's
documented shapes: one opposite market order per instrument the account holds, recorded before it is sent."""

import json
from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone
from werkzeug import Response

from oversight.reconcile import bot_reconcile
from bots.models import Reconciliation
from controlplane import tenancy
from execution.models import Instrument, Order, StrategyPosition, TradeIntent
from integrations.providers.futures_contracts import tradovate_symbol
from integrations.providers.tradovate.fake import ACCOUNT, position, serve_session
from tests.execution.helpers import store_bars
from tests.integrations.live_bots import es_instrument, live_tradovate_bot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tradovate(point_at, settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    return point_at("tradovate")


def _account_holds(server, holdings: dict[str, tuple[int, int]]) -> None:
    """The account's positions (symbol: (contract id, net position)) and the contracts they are in."""
    server.expect_request("/position/list").respond_with_json(
        [
            position(index, account_id=ACCOUNT["id"], contract_id=contract_id, net_pos=net)
            for index, (contract_id, net) in enumerate(holdings.values(), start=1)
        ]
    )
    for symbol, (contract_id, _) in holdings.items():
        server.expect_request("/contract/item", query_string=f"id={contract_id}").respond_with_json(
            {"id": contract_id, "name": tradovate_symbol(symbol), "contractMaturityId": 1}
        )


def test_flatten_sends_one_opposite_market_order_per_instrument_recorded_before_the_send(
    tenant_a, owner_a, api_operator_a, tradovate
):
    es = es_instrument()
    nq = Instrument.objects.get_or_create(
        symbol="NQ",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="20", calendar="CME_Equity"),
    )[0]
    recent = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    for instrument in (es, nq):
        store_bars(instrument, recent, 5)  # a mark to carry the accepted positions at
    bot = live_tradovate_bot(tenant=tenant_a, owner=owner_a)
    serve_session(tradovate)
    _account_holds(tradovate, {"ES": (55, 2), "NQ": (56, -1)})
    with tenancy.tenant_context(tenant_a.id):
        assert bot_reconcile(bot_id=bot.id, actor=owner_a).status == Reconciliation.Status.MISMATCH

    order_ids = count(9101)

    def place(request):
        return Response(json.dumps({"orderId": next(order_ids)}), 200, content_type="application/json")

    tradovate.expect_request("/order/placeorder", method="POST").respond_with_handler(place)
    response = api_operator_a.post(
        f"/api/bots/{bot.id}/reconcile/resolve",
        {"action": "flatten", "reason": "broker says we hold it; get flat"},
        format="json",
    )
    assert response.status_code == 200, response.content
    sent = [json.loads(r.data) for r, _ in tradovate.log if r.path == "/order/placeorder"]
    placed = sorted(sent, key=lambda b: b["symbol"])
    assert [(p["symbol"], p["action"], p["orderQty"], p["orderType"]) for p in placed] == [
        (tradovate_symbol("ES"), "Sell", 2, "Market"),
        (tradovate_symbol("NQ"), "Buy", 1, "Market"),
    ]
    with tenancy.tenant_context(tenant_a.id):
        orders = list(
            Order.objects.filter(bot=bot).select_related("intent", "instrument").order_by("instrument__symbol")
        )
        books = dict(StrategyPosition.objects.filter(bot=bot).values_list("instrument__symbol", "quantity"))
        bot.refresh_from_db()
    assert [(o.instrument.symbol, o.side, o.quantity, o.status) for o in orders] == [
        ("ES", "sell", 2, "WORKING"),
        ("NQ", "buy", 1, "WORKING"),
    ]
    assert {o.client_order_id: o.venue_order_id for o in orders} == {
        p["clOrdId"]: str(9101 + i) for i, p in enumerate(sent)
    }
    assert {o.intent.source for o in orders} == {TradeIntent.Source.RECONCILE}
    # The fake still reports the positions (fills not in yet); our books took the venue's, so the follow-up matched.
    assert books == {"ES": 2, "NQ": -1}
    body = response.json()
    assert body["followup"]["status"] == "MATCHED" and bot.reconcile_mismatch is False
    assert [o["status"] for o in body["resolved"]["resolution_detail"]["orders"]] == ["WORKING", "WORKING"]
    again = api_operator_a.post(
        f"/api/bots/{bot.id}/reconcile/resolve", {"action": "flatten", "reason": "twice"}, format="json"
    )
    assert again.status_code == 409 and again.json()["error_code"] == "ILLEGAL_TRANSITION"
    assert len([r for r, _ in tradovate.log if r.path == "/order/placeorder"]) == 2


def test_a_flatten_the_venue_fills_before_we_record_it_keeps_the_flag_and_blocks_a_second_resolution(
    tenant_a, owner_a, api_operator_a, tradovate
):
    es = es_instrument()
    store_bars(es, timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30), 5)
    bot = live_tradovate_bot(tenant=tenant_a, owner=owner_a)
    serve_session(tradovate)
    held = {"net": 2}
    tradovate.expect_request("/position/list").respond_with_handler(
        lambda r: Response(
            json.dumps(
                [position(1, account_id=ACCOUNT["id"], contract_id=55, net_pos=held["net"])] if held["net"] else []
            ),
            200,
            content_type="application/json",
        )
    )
    tradovate.expect_request("/contract/item", query_string="id=55").respond_with_json(
        {"id": 55, "name": tradovate_symbol("ES"), "contractMaturityId": 1}
    )

    def place_and_fill(request):
        held["net"] = 0  # a market order: filled at the venue at once, its fill not yet fetched by the OMS
        return Response(json.dumps({"orderId": 9201}), 200, content_type="application/json")

    tradovate.expect_request("/order/placeorder", method="POST").respond_with_handler(place_and_fill)
    with tenancy.tenant_context(tenant_a.id):
        bot_reconcile(bot_id=bot.id, actor=owner_a)
    response = api_operator_a.post(
        f"/api/bots/{bot.id}/reconcile/resolve", {"action": "flatten", "reason": "flat now"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["followup"]["status"] == "MISMATCH"
    assert response.json()["followup"]["differences"] == {"ES": {"internal": 2.0, "venue": 0.0}}
    again = api_operator_a.post(
        f"/api/bots/{bot.id}/reconcile/resolve", {"action": "accept_venue", "reason": "venue is flat"}, format="json"
    )
    assert again.status_code == 409 and again.json()["error_code"] == "CONFLICT"
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        [order] = Order.objects.filter(bot=bot)
        assert StrategyPosition.objects.get(bot=bot).quantity == 2
    assert bot.reconcile_mismatch is True and again.json()["details"] == {"open_orders": [order.client_order_id]}
