"""The intents and PnL endpoints (three personas and another tenant), and the lifecycle wired to the OMS."""

from datetime import timedelta
from decimal import Decimal

import pytest

from bots import services as bot_services
from oversight.reconcile import bot_reconcile
from bots.models import CancelRequest, Reconciliation
from controlplane import tenancy
from execution.orders import oms
from execution.orders.intents import submit_intent
from execution.models import Order, TradeIntent
from execution.risk.state import risk_scopes_for_bots
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy, sell
from tests.processes import throwaway_redis  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

BODY = {"legs": [{"venue": "sim", "symbol": "ES", "side": "buy", "quantity": "1"}]}


def test_post_intent_with_header_key_then_replay_then_conflict(api_operator_a, api_viewer_a, es_bars, trading_bot):
    bot = trading_bot()
    body = {**BODY, "bot": bot.id}
    first = api_operator_a.post("/api/intents", body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == 201, first.json()
    assert first.json()["status"] == "PENDING" and first.json()["legs"][0]["symbol"] == "ES"
    again = api_operator_a.post("/api/intents", body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = api_operator_a.post(
        "/api/intents",
        {**body, "legs": [{**BODY["legs"][0], "quantity": "2"}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )
    assert other.status_code == 409 and other.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    assert api_viewer_a.post("/api/intents", body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 403
    listed = api_viewer_a.get("/api/intents?status=PENDING").json()
    assert listed["count"] == 1
    assert api_viewer_a.get(f"/api/intents/{first.json()['id']}").status_code == 200


def test_post_intent_validation_names_the_field(api_operator_a, es_bars, trading_bot):
    bot = trading_bot()
    missing_key = api_operator_a.post("/api/intents", {**BODY, "bot": bot.id}, format="json")
    assert missing_key.status_code == 400 and "idempotency_key" in missing_key.json()["details"]
    bad_leg = api_operator_a.post(
        "/api/intents",
        {
            "bot": bot.id,
            "idempotency_key": "x",
            "legs": [{"venue": "sim", "symbol": "NOPE", "side": "buy", "quantity": "1"}],
        },
        format="json",
    )
    assert bad_leg.status_code == 400 and "legs[0].symbol" in bad_leg.json()["details"]


def test_a_risk_refusal_answers_201_rejected(api_operator_a, es_bars, trading_bot):
    bot = trading_bot(risk_limits={"max_order_size": 0.5})
    response = api_operator_a.post("/api/intents", {**BODY, "bot": bot.id, "idempotency_key": "r"}, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "REJECTED" and response.json()["rejection"]["limit"] == "max_order_size"


def test_cancel_a_working_intent_and_refuse_a_finished_one(
    api_operator_a, api_viewer_a, tenant_a, es_bars, trading_bot
):
    bot = trading_bot()
    intent_id = api_operator_a.post(
        "/api/intents", {**BODY, "bot": bot.id, "idempotency_key": "c"}, format="json"
    ).json()["id"]
    with tenancy.tenant_context(tenant_a.id):
        oms.process_pending_intents()
    assert api_viewer_a.post(f"/api/intents/{intent_id}/cancel").status_code == 403
    cancelled = api_operator_a.post(f"/api/intents/{intent_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["orders"][0]["status"] == "CANCELLED"
    again = api_operator_a.post(f"/api/intents/{intent_id}/cancel")
    assert again.status_code == 409 and again.json()["error_code"] == "ILLEGAL_TRANSITION"


def _working_intent(api, tenant, bot, key):
    intent_id = api.post("/api/intents", {**BODY, "bot": bot.id, "idempotency_key": key}, format="json").json()["id"]
    with tenancy.tenant_context(tenant.id):
        oms.process_pending_intents()
        assert Order.objects.get(intent_id=intent_id).status == "WORKING"
    return intent_id


def test_a_cancel_past_the_bots_max_cancels_per_minute_answers_429_and_cancels_nothing(
    api_operator_a, owner_a, tenant_a, es_bars, trading_bot
):
    bot = trading_bot(risk_limits={"max_cancels_per_minute": 1})
    first = _working_intent(api_operator_a, tenant_a, bot, "c1")
    second = _working_intent(api_operator_a, tenant_a, bot, "c2")
    assert api_operator_a.post(f"/api/intents/{first}/cancel").status_code == 200

    refused = api_operator_a.post(f"/api/intents/{second}/cancel")
    assert refused.status_code == 429, refused.json()
    body = refused.json()
    assert body["error_code"] == "RATE_LIMITED"
    check = body["details"]["checks"][0]
    assert check["limit"] == "max_cancels_per_minute" and check["scope"] == "bot"
    assert check["values"] == {"cancels_last_minute": "1", "cancels_requested": "1", "limit": "1"}
    assert 1 <= int(refused["Retry-After"]) <= 60
    with tenancy.tenant_context(tenant_a.id):
        assert Order.objects.get(intent_id=second).status == "WORKING"
        assert TradeIntent.objects.get(pk=second).status == "WORKING"

        # A kill's cancels are never limited: it must always get through.
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            bot_services.bot_kill(bot_id=bot.id, actor=owner_a, reason="drill")
        assert Order.objects.get(intent_id=second).status == "CANCELLED"


def test_the_tenants_max_cancels_per_minute_counts_every_bots_cancels(
    api_owner_a, api_operator_a, tenant_a, es_bars, trading_bot
):
    from execution.risk.services import tenant_risk_limits_set

    one, two = trading_bot(name="one"), trading_bot(name="two")
    with tenancy.tenant_context(tenant_a.id):
        tenant_risk_limits_set(risk_limits={"max_cancels_per_minute": 1}, reason="test", actor_name="test")
    first = _working_intent(api_operator_a, tenant_a, one, "t1")
    second = _working_intent(api_operator_a, tenant_a, two, "t2")
    assert api_operator_a.post(f"/api/intents/{first}/cancel").status_code == 200
    refused = api_operator_a.post(f"/api/intents/{second}/cancel")
    assert refused.status_code == 429 and refused.json()["details"]["checks"][0]["scope"] == "tenant"


def test_every_intent_endpoint_is_isolated_per_tenant(api_operator_a, api_owner_b, es_bars, trading_bot):
    bot = trading_bot()
    intent_id = api_operator_a.post(
        "/api/intents", {**BODY, "bot": bot.id, "idempotency_key": "iso"}, format="json"
    ).json()["id"]
    assert api_owner_b.get("/api/intents").json()["count"] == 0
    assert api_owner_b.get(f"/api/intents/{intent_id}").status_code == 404
    assert api_owner_b.post(f"/api/intents/{intent_id}/cancel").status_code == 404
    assert api_owner_b.get(f"/api/bots/{bot.id}/pnl").status_code == 404
    foreign = api_owner_b.post("/api/intents", {**BODY, "bot": bot.id, "idempotency_key": "iso"}, format="json")
    assert foreign.status_code == 400 and "bot" in foreign.json()["details"]


def test_pnl_endpoint_for_every_persona(api_owner_a, api_operator_a, api_viewer_a, tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=bot, legs=[buy()], idempotency_key="p", source="tick", bar_ts=T0)
        oms.process_pending_intents()
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
    for client in (api_owner_a, api_operator_a, api_viewer_a):
        body = client.get(f"/api/bots/{bot.id}/pnl").json()
        assert body["positions"][0]["quantity"] == "1.000000000"
        # Marked at the latest complete bar's close (109.5) against the fill at 101: 8.5 x 50.
        assert Decimal(body["unrealized_pnl"]) == Decimal("425")


def test_kill_cancels_open_orders_through_the_oms(owner_a, tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=bot, legs=[buy()], idempotency_key="a", source="tick", bar_ts=T0)
        oms.process_pending_intents()
        pending = submit_intent(bot=bot, legs=[sell()], idempotency_key="b", source="tick", bar_ts=T0).intent
    with tenancy.tenant_context(tenant_a.id):
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            bot_services.bot_kill(bot_id=bot.id, actor=owner_a, reason="drill")
        request = CancelRequest.objects.get()
        assert request.status == "DONE", request.result
        assert request.result["orders_cancelled"] == 1 and request.result["intents_cancelled"] == 2
        assert Order.objects.get().status == "CANCELLED"
        pending.refresh_from_db()
        assert pending.status == "CANCELLED"


def test_tenant_kill_cancels_every_bot_of_that_tenant_only(owner_a, owner_b, tenant_a, tenant_b, es_bars, trading_bot):
    from django.test import TestCase

    bots = [trading_bot(name="one"), trading_bot(name="two"), trading_bot(name="b", tenant=tenant_b, actor=owner_b)]
    for bot in bots:
        with tenancy.tenant_context(bot.tenant_id):
            submit_intent(bot=bot, legs=[buy()], idempotency_key=f"k{bot.id}", source="tick", bar_ts=T0)
            oms.process_pending_intents()
    with tenancy.tenant_context(tenant_a.id), TestCase.captureOnCommitCallbacks(execute=True):
        bot_services.tenant_kill(actor=owner_a, reason="drill")
    with tenancy.tenant_context(tenant_a.id):
        assert set(Order.objects.values_list("status", flat=True)) == {"CANCELLED"}
    with tenancy.tenant_context(tenant_b.id):
        assert Order.objects.get().status == "WORKING"


def test_reconcile_matches_the_sim_fills_and_flags_a_difference(owner_a, tenant_a, es_bars, trading_bot):
    from execution.models import StrategyPosition

    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=bot, legs=[buy("3")], idempotency_key="a", source="tick", bar_ts=T0)
        oms.process_pending_intents()
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
        result = bot_reconcile(bot_id=bot.id, actor=owner_a)
        assert result.status == Reconciliation.Status.MATCHED and result.internal_positions == {"ES": 3.0}
        StrategyPosition.objects.filter(bot=bot).update(quantity=2)  # our books drift from the venue's
        result = bot_reconcile(bot_id=bot.id, actor=owner_a)
        assert result.status == Reconciliation.Status.MISMATCH
        assert result.differences == {"ES": {"internal": 2.0, "venue": 3.0}}
        bot.refresh_from_db()
        assert bot.reconcile_mismatch
        blocked = submit_intent(bot=bot, legs=[sell()], idempotency_key="b", source="tick", bar_ts=T0).intent
        assert blocked.rejection["error_code"] == "RECONCILE_MISMATCH"


def test_paper_record_counts_paper_fills_days_and_open_incidents(tenant_a, es_bars, trading_bot):
    from oversight.paper import paper_record

    bot = trading_bot(stage="PAPER")
    with tenancy.tenant_context(tenant_a.id):
        for i in range(2):
            submit_intent(
                bot=bot, legs=[buy()], idempotency_key=f"p{i}", source="tick", bar_ts=T0 + timedelta(minutes=i)
            )
            oms.process_pending_intents()
            match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=i + 1))
        record = paper_record(bot=bot)
        assert (record.trades, record.days, record.open_risk_incidents) == (2, 1, 0)


def test_multi_leg_failure_cancels_the_sent_leg_and_says_so(tenant_a, es_bars, trading_bot):
    from controlplane.errors import ErrorCode
    from integrations.venues import registry
    from integrations.venues.base import VenueError

    class Down:
        name = "down"

        def place_order(self, request):
            raise VenueError(ErrorCode.INTEGRATION_UNREACHABLE, "connection refused")

        def cancel_order(self, **_):
            raise AssertionError("never sent, never cancelled")

    registry.register_venue("down", lambda *, bot_id=None: Down())
    try:
        bot = trading_bot()
        with tenancy.tenant_context(tenant_a.id):
            from execution.orders.intents import LegSpec

            intent = submit_intent(
                bot=bot,
                legs=[buy(), LegSpec("down", "ES", "sell", Decimal(1))],
                idempotency_key="ml",
                source="tick",
                bar_ts=T0,
            ).intent
            oms.process_pending_intents()
            intent.refresh_from_db()
            assert intent.status == "FAILED"
            assert intent.status_detail["failed_leg"] == 1 and intent.status_detail["policy"] == "CANCEL_REMAINING"
            assert intent.status_detail["error_code"] == "INTEGRATION_UNREACHABLE"
            assert intent.status_detail["actions"][0]["leg"] == 0 and intent.status_detail["actions"][0]["cancelled"]
            statuses = dict(Order.objects.values_list("leg__leg_index", "status"))
            assert statuses == {0: "CANCELLED", 1: "FAILED"}
    finally:
        registry._factories.pop("down", None)


def test_risk_scopes_for_many_bots_take_a_constant_number_of_queries(
    tenant_a, es_bars, trading_bot, django_assert_max_num_queries
):
    bots = [trading_bot(name=f"b{i}", risk_limits={"max_position": 5}) for i in range(30)]
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=bots[0], legs=[buy()], idempotency_key="q", source="tick", bar_ts=T0)
        oms.process_pending_intents()
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
    with tenancy.tenant_context(tenant_a.id), django_assert_max_num_queries(8):
        scopes = risk_scopes_for_bots(bots=bots, instrument=es_bars, at=T0 + timedelta(minutes=2))
    assert [s.name for s in scopes[bots[0].id]] == ["bot", "tenant"]
    assert scopes[bots[0].id][0].state.position == 1 and scopes[bots[1].id][0].state.position == 0
    assert scopes[bots[1].id][1].state.position == 1
    assert scopes[bots[0].id][0].limits.max_position == 5


def test_the_bot_filter_lists_that_bots_intents_and_nothing_of_another_tenant(
    api_operator_a, api_owner_b, owner_b, tenant_b, es_bars, trading_bot
):
    mine, other = trading_bot(), trading_bot(name="other")
    theirs = trading_bot(name="theirs", tenant=tenant_b, actor=owner_b)

    def post(client, bot, key):
        response = client.post("/api/intents", {**BODY, "bot": bot.id, "idempotency_key": key}, format="json")
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    mine_id, _ = post(api_operator_a, mine, "f-1"), post(api_operator_a, other, "f-2")
    theirs_id = post(api_owner_b, theirs, "f-3")

    def ids(client, query):
        response = client.get(f"/api/intents{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids(api_operator_a, f"?bot={mine.id}") == [mine_id]
    assert ids(api_owner_b, f"?bot={theirs.id}") == [theirs_id]
    # Another tenant's bot id is answered like a bot without intents: nothing tells whether it exists.
    assert ids(api_operator_a, f"?bot={theirs.id}") == []
    assert ids(api_owner_b, f"?bot={mine.id}") == []


def test_with_redis_hung_an_intent_is_saved_pending_within_a_bound(
    api_operator_a, es_bars, trading_bot, settings, throwaway_redis, django_capture_on_commit_callbacks
):
    """The OMS run it asks for is not required (the next OMS run sweeps PENDING intents): no 503, and no wait for a
    broker the request already found hung (its throttle did), so the send is skipped, not attempted."""
    import time

    settings.OMS_ENQUEUE_ON_SUBMIT = True
    bot = trading_bot()
    throwaway_redis.freeze()
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_operator_a.post("/api/intents", {**BODY, "bot": bot.id, "idempotency_key": "hung"}, format="json")
    elapsed = time.monotonic() - started
    assert answer.status_code == 201 and answer.json()["status"] == "PENDING", answer.content
    assert elapsed < settings.REDIS_TIMEOUT_SECONDS + 2, elapsed
