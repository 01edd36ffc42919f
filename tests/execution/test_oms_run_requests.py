"""OMS run requests are coalesced (issue 18): a burst of API submissions queues one OMS run per tenant, not one per
intent; the run clears the request as it starts, so later intents queue the next run; a run that claimed its whole
limit asks for another; and beat's PENDING sweep asks for a run of every active tenant with PENDING intents, so an
intent whose request was lost is not stranded.

The messages land in the real broker (this test database's Redis, queue ``oms``) where no worker consumes them;
each test empties that queue and the request flags first and after."""

import base64
import json

import pytest
import redis
from django.conf import settings as django_settings

from controlplane import tenancy
from controlplane.models import Tenant
from execution.models import TradeIntent
from execution.orders.intents import submit_intent
from execution.orders.oms_runs import request_flag
from execution.orders.tasks import oms_process, oms_sweep_pending
from tests.execution.conftest import T0, buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)

    def empty():
        client.delete("oms", *client.scan_iter(match="oms:run-requested:*"))

    empty()
    yield client
    empty()


def _queued_runs(broker) -> list[int]:
    """The tenant ids of the OMS runs waiting in the queue."""
    runs = []
    for raw in broker.lrange("oms", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "execution.oms_process"
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        runs.append(kwargs["tenant_id"])
    return runs


def _submit_api(bot, key, capture):
    with capture(execute=True):
        return submit_intent(bot=bot, legs=[buy()], idempotency_key=key, source="api", bar_ts=T0).intent


def test_a_burst_of_api_submissions_queues_one_oms_run_then_the_next_after_it_starts(
    tenant_a, es_bars, trading_bot, settings, broker, django_capture_on_commit_callbacks
):
    settings.OMS_ENQUEUE_ON_SUBMIT = True
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        for n in range(5):
            _submit_api(bot, f"burst-{n}", django_capture_on_commit_callbacks)
    assert _queued_runs(broker) == [tenant_a.id]  # one run for five intents (old code: five)
    assert 0 < broker.ttl(request_flag(tenant_a.id)) <= settings.OMS_RUN_REQUEST_TTL_SECONDS

    broker.delete("oms")  # a worker took the message; running it clears the request before claiming
    assert oms_process(tenant_id=tenant_a.id) == 5
    assert not broker.exists(request_flag(tenant_a.id))
    with tenancy.tenant_context(tenant_a.id):
        assert set(TradeIntent.objects.values_list("status", flat=True)) == {TradeIntent.Status.WORKING}
        _submit_api(bot, "after-the-run", django_capture_on_commit_callbacks)
    assert _queued_runs(broker) == [tenant_a.id]


def test_a_run_that_claimed_its_whole_limit_asks_for_the_next(tenant_a, es_bars, trading_bot, broker):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        for n in range(3):
            submit_intent(bot=bot, legs=[buy()], idempotency_key=f"limit-{n}", source="tick", bar_ts=T0)
    assert oms_process(tenant_id=tenant_a.id, limit=2) == 2
    assert _queued_runs(broker) == [tenant_a.id]
    broker.delete("oms", request_flag(tenant_a.id))
    assert oms_process(tenant_id=tenant_a.id, limit=2) == 1
    assert _queued_runs(broker) == []


def test_the_pending_sweep_asks_for_a_run_of_each_active_tenant_with_pending_intents_once(
    tenant_a, tenant_b, owner_b, es_bars, trading_bot, broker
):
    """Intents submitted with no run requested (the tick's own path, or a request lost with the broker down)."""
    stranded = trading_bot()
    suspended = trading_bot(name="suspended", tenant=tenant_b, actor=owner_b)
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=stranded, legs=[buy()], idempotency_key="stranded", source="tick", bar_ts=T0)
    with tenancy.tenant_context(tenant_b.id):
        submit_intent(bot=suspended, legs=[buy()], idempotency_key="suspended", source="tick", bar_ts=T0)
    Tenant.objects.filter(pk=tenant_b.id).update(status=Tenant.Status.SUSPENDED)
    quiet = Tenant.objects.create(slug="quiet", name="Quiet")

    assert oms_sweep_pending() == [tenant_a.id]
    assert oms_sweep_pending() == [tenant_a.id]  # asked again, but one run waits already
    assert _queued_runs(broker) == [tenant_a.id]
    assert quiet.id not in _queued_runs(broker)


def test_a_run_whose_claim_came_back_full_asks_for_another_run_at_once(
    tenant_a, es_bars, trading_bot, settings, broker
):
    """A burst is shared by the idle workers: the first full batch asks for another run before it is sent, so
    the next batch is not left waiting for this run's sends (old code: no run asked for below the limit)."""
    settings.OMS_BATCH_SIZE = 2
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        for n in range(3):
            submit_intent(bot=bot, legs=[buy()], idempotency_key=f"full-{n}", source="tick", bar_ts=T0)
    assert oms_process(tenant_id=tenant_a.id) == 3  # here the same run took the rest: no worker consumes the queue
    assert _queued_runs(broker) == [tenant_a.id]  # one run asked for (coalesced), by the full first batch
    broker.delete("oms", request_flag(tenant_a.id))
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=bot, legs=[buy()], idempotency_key="alone", source="tick", bar_ts=T0)
    assert oms_process(tenant_id=tenant_a.id) == 1
    assert _queued_runs(broker) == []  # a claim that was not full asks for nothing


def test_a_run_whose_claim_came_back_short_stops_and_a_later_intent_asks_for_its_own_run(
    tenant_a, es_bars, trading_bot, settings, broker, django_capture_on_commit_callbacks
):
    """A short claim ends the run (old code: a second claim, a transaction that found nothing, after every run);
    the intent committed after it is not stranded: the run cleared its request before claiming, so the intent's
    own request queues the next run (``execution.orders.oms_runs``)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.OMS_ENQUEUE_ON_SUBMIT = True
    settings.OMS_BATCH_SIZE = 5
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        for n in range(3):
            _submit_api(bot, f"short-{n}", django_capture_on_commit_callbacks)
    broker.delete("oms")  # a worker took the message
    with CaptureQueriesContext(connection) as queries:
        assert oms_process(tenant_id=tenant_a.id) == 3
    claims = [q for q in queries if "SKIP LOCKED" in q["sql"] and "execution_tradeintent" in q["sql"]]
    assert len(claims) == 1, [q["sql"][:80] for q in claims]
    assert _queued_runs(broker) == []
    with tenancy.tenant_context(tenant_a.id):
        late = _submit_api(bot, "after-the-short-claim", django_capture_on_commit_callbacks)
    assert _queued_runs(broker) == [tenant_a.id]
    broker.delete("oms")
    assert oms_process(tenant_id=tenant_a.id) == 1
    with tenancy.tenant_context(tenant_a.id):
        assert TradeIntent.objects.get(pk=late.pk).status == TradeIntent.Status.WORKING


def test_the_batches_of_a_tick_ask_for_one_oms_run_per_tenant(
    tenant_a, owner_a, settings, broker, django_capture_on_commit_callbacks
):
    """Each tick batch that created intents asks for an OMS run once it commits, coalesced with the others (old
    code: one ``oms_process`` message per batch and tenant, however many were already queued)."""
    from execution.models import Instrument
    from execution.tick.batches import run_tick_batch
    from tests.execution.test_tick import MINUTE, T0 as TICK_T0, running_bot
    from tests.execution.helpers import store_bars

    btc, eth = Instrument.objects.get(symbol="BTC-USD"), Instrument.objects.get(symbol="ETH-USD")
    store_bars(btc, TICK_T0, 12)
    store_bars(eth, TICK_T0, 12)
    running_bot(tenant_a, owner_a, instruments=("BTC-USD", "ETH-USD"))
    with django_capture_on_commit_callbacks(execute=True):
        for instrument in (btc, eth):
            result = run_tick_batch(instrument=instrument, timeframe="1m", as_of=TICK_T0 + 10 * MINUTE)
            assert result.intents_created == 1
    assert _queued_runs(broker) == [tenant_a.id]
    with tenancy.tenant_context(tenant_a.id):
        assert set(TradeIntent.objects.values_list("status", flat=True)) == {TradeIntent.Status.PENDING}
    broker.delete("oms")  # a worker took the run: it sends both
    assert oms_process(tenant_id=tenant_a.id) == 2


def test_a_run_request_asks_the_result_backend_for_nothing(tenant_a, broker):
    """``execution.oms_process`` ignores its result; a send by name does not know it and subscribed to the result's
    channel on the result backend for every run requested (one more round trip per request, and a subscription
    never released). Old code: the message said ``ignore_result`` False."""
    from execution.orders.oms_runs import request_oms_run

    assert request_oms_run(tenant_a.id) is True
    [raw] = broker.lrange("oms", 0, -1)
    assert json.loads(raw)["headers"]["ignore_result"] is True


def _killed_with_its_hook_unrun(bot, owner):
    """A kill whose cancel hook never ran (its on-commit callbacks are not executed here): the request stays
    PENDING, as after a hook that failed."""
    from bots import services as bot_services
    from bots.models import CancelRequest

    bot_services.bot_kill(bot_id=bot.id, actor=owner, reason="test")
    return CancelRequest.objects.get(bot=bot, status=CancelRequest.Status.PENDING)


def test_a_cancel_request_whose_hook_did_not_run_is_carried_out_by_the_recovery_sweep_without_any_intent(
    tenant_a, owner_a, es_bars, trading_bot, broker
):
    """``bots.services.kills`` counts on "the beat's sweep" for a failed hook; old code swept cancel requests only
    in an OMS run, and with no intent to send no run ever came (a killed bot's new intents are refused at submit)."""
    from bots.models import CancelRequest
    from execution.orders.tasks import oms_recover

    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=bot, legs=[buy()], idempotency_key="before-the-kill", source="tick", bar_ts=T0)
        cancel = _killed_with_its_hook_unrun(bot, owner_a)
    assert oms_recover(tenant_id=tenant_a.id)["cancel_requests"] == 1
    with tenancy.tenant_context(tenant_a.id):
        cancel.refresh_from_db()
        assert cancel.status == CancelRequest.Status.DONE
        assert TradeIntent.objects.get(idempotency_key="before-the-kill").status == TradeIntent.Status.CANCELLED


def test_an_oms_run_sweeps_cancel_requests_before_it_claims_at_most_once_an_interval(
    tenant_a, owner_a, es_bars, trading_bot, settings, broker
):
    """The sweep before a claim found nothing almost always, at a transaction per run on every intent's path; it
    now runs at most once every ``OMS_CANCEL_SWEEP_SECONDS`` per process and tenant (0: every run), and a kill's
    switch is refused by the claim's re-check meanwhile."""
    from bots.models import CancelRequest
    from execution.orders import tasks

    tasks._last_sweep.pop(tenant_a.id, None)
    settings.OMS_CANCEL_SWEEP_SECONDS = 3600
    killed, other = trading_bot(), trading_bot(name="other")
    with tenancy.tenant_context(tenant_a.id):
        submit_intent(bot=killed, legs=[buy()], idempotency_key="killed-1", source="tick", bar_ts=T0)
        first = _killed_with_its_hook_unrun(killed, owner_a)
    assert oms_process(tenant_id=tenant_a.id) == 0  # the first run swept: the killed bot's intent was cancelled
    with tenancy.tenant_context(tenant_a.id):
        first.refresh_from_db()
        assert first.status == CancelRequest.Status.DONE
        assert TradeIntent.objects.get(idempotency_key="killed-1").status == TradeIntent.Status.CANCELLED
        submit_intent(bot=other, legs=[buy()], idempotency_key="other-1", source="tick", bar_ts=T0)
        second = _killed_with_its_hook_unrun(other, owner_a)
    assert oms_process(tenant_id=tenant_a.id) == 1  # within the interval: no sweep; the re-check refuses the kill
    with tenancy.tenant_context(tenant_a.id):
        second.refresh_from_db()
        refused = TradeIntent.objects.get(idempotency_key="other-1")
        assert second.status == CancelRequest.Status.PENDING
        assert refused.status == TradeIntent.Status.REJECTED and refused.rejection["error_code"] == "BOT_KILLED"
    settings.OMS_CANCEL_SWEEP_SECONDS = 0
    assert oms_process(tenant_id=tenant_a.id) == 0
    with tenancy.tenant_context(tenant_a.id):
        second.refresh_from_db()
        assert second.status == CancelRequest.Status.DONE
