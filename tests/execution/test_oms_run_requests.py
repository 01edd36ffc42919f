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
