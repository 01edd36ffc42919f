"""submit_intents (issue 18): many intents in one transaction, each with submit_intent's semantics — the same
stored checks, the same idempotency, the same refusals, audit rows for each, and nothing saved on bad input."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bots.models import Bot
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import AuditEvent
from execution.models import IntentLeg, Order, RiskIncident, TradeIntent
from execution.orders import oms
from execution.orders.intent_batches import IntentRequest, submit_intents
from execution.orders.intents import LegSpec, submit_intent
from tests.execution.conftest import T0, buy, sell

pytestmark = pytest.mark.django_db


def _requests(bots, count, prefix="b"):
    """Intent n: bot n mod len(bots); one in three has a second, limit leg."""
    requests = []
    for n in range(count):
        legs = [buy()] if n % 3 else [buy(), sell("1", order_type="limit", limit_price=Decimal("120"))]
        requests.append(IntentRequest(bot=bots[n % len(bots)], legs=legs, idempotency_key=f"{prefix}-{n}", bar_ts=T0))
    return requests


def test_a_batch_stores_what_one_by_one_submissions_store_in_a_handful_of_statements(tenant_a, es_bars, trading_bot):
    bots = [trading_bot(name=f"batch-{n}") for n in range(3)]
    with tenancy.tenant_context(tenant_a.id):
        singles = [
            submit_intent(bot=r.bot, legs=r.legs, idempotency_key=r.idempotency_key, source="tick", bar_ts=T0).intent
            for r in _requests(bots, 6, prefix="single")
        ]
        with CaptureQueriesContext(connection) as queries:
            results = submit_intents(_requests(bots, 6), source="tick", actor_name="bench")
        assert len(queries) < 6 * 5  # one by one: about 15 an intent
        assert [r.created for r in results] == [True] * 6
        for single, result in zip(singles, results, strict=True):
            batch = TradeIntent.objects.get(pk=result.intent.pk)
            assert batch.status == single.status == TradeIntent.Status.PENDING
            assert batch.bot_id == single.bot_id and batch.created_by == "bench" and batch.bar_ts == T0
            assert batch.risk_checks and _without_times(batch.risk_checks) == _without_times(single.risk_checks)
            legs = list(IntentLeg.objects.filter(intent=batch).order_by("leg_index").values_list("side", "order_type"))
            assert legs == list(
                IntentLeg.objects.filter(intent=single).order_by("leg_index").values_list("side", "order_type")
            )
            created = AuditEvent.objects.get(action="intent.create", resource_id=str(batch.pk))
            assert created.actor == "bench" and created.after_state["idempotency_key"] == batch.idempotency_key
            assert created.after_state["legs"][0]["symbol"] == "ES"
        # The OMS sends them like any other.
        assert oms.process_pending_intents() == 12
        assert Order.objects.filter(intent_id__in=[r.intent.pk for r in results]).count() == 8


def _without_times(checks):
    return [{k: v for k, v in check.items() if k != "at"} for check in checks]


def test_a_retried_batch_returns_the_same_intents_and_a_reused_key_saves_nothing(tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        first = submit_intents(_requests([bot], 3), source="api")
        again = submit_intents(_requests([bot], 4), source="api")  # three retries and one new
        assert [r.created for r in again] == [False, False, False, True]
        assert [r.intent.pk for r in again[:3]] == [r.intent.pk for r in first]
        # The same key twice in one batch is a retry of the first.
        twice = submit_intents(
            [IntentRequest(bot, [buy()], "twice", T0), IntentRequest(bot, [buy()], "twice", T0)], source="api"
        )
        assert [r.created for r in twice] == [True, False] and twice[0].intent.pk == twice[1].intent.pk
        before = TradeIntent.objects.count(), AuditEvent.objects.count()
        with pytest.raises(ControlPlaneError) as error:
            submit_intents(
                [IntentRequest(bot, [buy()], "fresh", T0), IntentRequest(bot, [buy("2")], "b-0", T0)], source="api"
            )
        assert error.value.code == ErrorCode.IDEMPOTENCY_KEY_REUSED
        assert error.value.details == {"index": 1, "idempotency_key": "b-0", "intent_id": first[0].intent.pk}
        assert (TradeIntent.objects.count(), AuditEvent.objects.count()) == before


def test_a_bad_field_names_its_intent_and_saves_nothing(tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        with pytest.raises(ControlPlaneError) as error:
            submit_intents(
                [
                    IntentRequest(bot, [buy()], "ok", T0),
                    IntentRequest(bot, [LegSpec("sim", "NOPE", "buy", Decimal(1)), buy("0")], "bad", T0),
                ],
                source="tick",
            )
        assert error.value.code == ErrorCode.VALIDATION_ERROR
        assert set(error.value.details) == {"intents[1].legs[0].symbol", "intents[1].legs[1].quantity"}
        with pytest.raises(ControlPlaneError) as error:
            submit_intents([IntentRequest(bot, [buy()], "ok", T0)], source="nowhere")
        assert set(error.value.details) == {"intents[0].source"}
        assert not TradeIntent.objects.exists() and not AuditEvent.objects.filter(action="intent.create").exists()


def test_refusals_are_per_intent_rejected_with_incidents_the_others_pending(tenant_a, es_bars, trading_bot):
    capped = trading_bot(name="capped", risk_limits={"max_position": 1})
    free = trading_bot(name="free")
    killed = trading_bot(name="killed")
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=killed.pk).update(killed=True)
        killed.refresh_from_db()
        results = submit_intents(
            [
                IntentRequest(capped, [buy("2")], "too-big", T0),
                IntentRequest(capped, [buy("1")], "fits", T0),
                IntentRequest(free, [buy("2")], "free", T0),
                IntentRequest(killed, [buy("1")], "killed", T0),
            ],
            source="tick",
        )
        statuses = [TradeIntent.objects.get(pk=r.intent.pk).status for r in results]
        assert statuses == ["REJECTED", "PENDING", "PENDING", "REJECTED"]
        too_big = TradeIntent.objects.get(pk=results[0].intent.pk)
        assert too_big.rejection["limit"] == "max_position" and too_big.rejection["scope"] == "bot"
        assert RiskIncident.objects.filter(bot=capped, kind="max_position", intent=too_big).exists()
        assert TradeIntent.objects.get(pk=results[3].intent.pk).rejection["error_code"] == "BOT_KILLED"
        assert AuditEvent.objects.filter(action="intent.status", after_state__status="REJECTED").count() == 2


def test_one_submission_reads_everything_before_it_writes_the_intent_and_nothing_after_it(
    tenant_a, es_bars, trading_bot
):
    """Issue 18's latency runs from the intent's insert: the intent, its legs and its audit row are the submission's
    last statement, one insert (old code: the legs' and the audit row's inserts, kill switches, a bar and the risk
    state per leg, and an update of the checks came after the intent's insert), and the instruments are read in
    the submission's transaction, not in one of their own."""
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        with CaptureQueriesContext(connection) as queries:
            result = submit_intent(
                bot=bot,
                legs=[buy(), sell("1", order_type="limit", limit_price=Decimal("120"))],
                idempotency_key="reads-first",
                source="api",
                bar_ts=T0,
            )
        intent = TradeIntent.objects.get(pk=result.intent.pk)
        assert [leg.leg_index for leg in IntentLeg.objects.filter(intent=intent).order_by("leg_index")] == [0, 1]
        created = AuditEvent.objects.get(action="intent.create", resource_id=str(intent.pk))
        assert created.after_state["status"] == "PENDING" and len(created.after_state["legs"]) == 2
    assert result.created and intent.status == TradeIntent.Status.PENDING and intent.risk_checks
    assert result.intent.pk == intent.pk and result.intent.created_at == intent.created_at
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]  # the test's
    writes = [i for i, sql in enumerate(statements) if 'INSERT INTO "execution_tradeintent"' in sql]
    assert writes == [len(statements) - 1], statements[writes[0] if writes else 0 :]
    assert 'INSERT INTO "execution_intentleg"' in statements[-1]
    assert 'INSERT INTO "controlplane_auditevent"' in statements[-1]
    assert len(statements) <= 9  # old code: 13, the instruments read in a transaction of their own
