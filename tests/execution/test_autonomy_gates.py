"""Autonomy gates live orders (issue 13, defect 5): a LIVE bot at T2 trades with its size and loss limits scaled by
AUTONOMY_T2_LIMIT_FACTOR, at T3 with full limits, below T2 only reduces; while the system status is not OK the tick
and the OMS refuse every LIVE order that opens or grows a position (AUTONOMY_NOT_ALLOWED, with the blockers' codes),
orders that reduce pass, and paper bots keep trading on sim."""

from datetime import timedelta

import pytest

from bots.models import Bot, Runner
from controlplane import tenancy
from controlplane.models import ProcessHeartbeat
from controlplane.status import forget_cached_status
from execution.orders import oms
from execution.orders.intents import submit_intent
from execution.models import TradeIntent
from execution.tick.batches import run_tick_batch
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy, sell
from tests.execution.helpers import store_bars
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)
from tests.status_fixtures import make_system_ok
from traces.models import NoTradeTrace
from traces.selectors import why_not

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_cached_status():
    forget_cached_status()
    yield
    forget_cached_status()


@pytest.fixture
def system_ok(tenant_a, owner_a, httpserver, settings):
    return make_system_ok(tenant=tenant_a, owner=owner_a, httpserver=httpserver, settings=settings)


def _live(bot, tier: str) -> Bot:
    Bot.objects.filter(pk=bot.pk).update(stage="LIVE", autonomy_tier=tier)
    bot.refresh_from_db()
    return bot


def _submit(bot, key, leg):
    return submit_intent(bot=bot, legs=[leg], idempotency_key=key, source="api", bar_ts=T0).intent


def _long(bot, es_bars, quantity="3"):
    """Buy ``quantity`` ES on sim while the bot is still PAPER, and fill it."""
    _submit(bot, "open", buy(quantity))
    oms.process_pending_intents()
    match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))


def test_a_live_bot_at_t2_trades_with_its_limits_scaled_by_the_factor_and_at_t3_with_full_limits(
    tenant_a, es_bars, trading_bot, system_ok, settings
):
    settings.AUTONOMY_T2_LIMIT_FACTOR = 0.25
    bot = trading_bot(risk_limits={"max_order_size": "4"})
    with tenancy.tenant_context(tenant_a.id):
        _live(bot, "T2")
        refused = _submit(bot, "t2-two", buy("2"))
        allowed = _submit(bot, "t2-one", buy("1"))
        _live(bot, "T3")
        full = _submit(bot, "t3-two", buy("2"))
    assert refused.status == TradeIntent.Status.REJECTED  # today: accepted at full size
    assert refused.rejection["limit"] == "max_order_size" and refused.rejection["values"]["limit"] == "1.00"
    assert allowed.status == TradeIntent.Status.PENDING
    assert full.status == TradeIntent.Status.PENDING
    size_check = next(c for c in full.risk_checks if c["limit"] == "max_order_size")
    assert size_check["values"]["limit"] == "4"


def test_a_live_bot_below_t2_only_reduces_its_position(tenant_a, es_bars, trading_bot, system_ok):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        _long(bot, es_bars)
        _live(bot, "T0")
        grow = _submit(bot, "grow", buy("1"))
        reduce = _submit(bot, "reduce", sell("1"))
    assert grow.status == TradeIntent.Status.REJECTED  # today: a T0 LIVE bot trades full size
    assert grow.rejection["limit"] == "trading_state" and grow.rejection["values"]["trading_state"] == "REDUCE_ONLY"
    assert reduce.status == TradeIntent.Status.PENDING


def test_while_the_system_is_not_ok_a_live_order_that_opens_is_refused_and_one_that_reduces_passes(
    tenant_a, es_bars, trading_bot
):
    live = trading_bot(name="live")
    paper = trading_bot(name="paper", stage="PAPER")
    with tenancy.tenant_context(tenant_a.id):
        _long(live, es_bars)
        _live(live, "T3")
        opening = _submit(live, "open-more", buy("1"))  # a fresh tenant: BLOCKED (no market-data key)
        reducing = _submit(live, "reduce", sell("2"))
        flipping = _submit(live, "flip", sell("5"))  # crosses zero: it opens a short
        on_paper = _submit(paper, "paper", buy("1"))
    assert opening.status == TradeIntent.Status.REJECTED  # today: autonomy_allowed=false changes nothing
    assert opening.rejection["error_code"] == "AUTONOMY_NOT_ALLOWED"
    assert opening.rejection["limit"] == "autonomy_allowed"
    values = opening.rejection["values"]
    assert values["system_status"] == "BLOCKED" and "INTEGRATION_KEY_MISSING" in values["blockers"]
    assert reducing.status == TradeIntent.Status.PENDING
    assert flipping.status == TradeIntent.Status.REJECTED and flipping.rejection["error_code"] == "AUTONOMY_NOT_ALLOWED"
    assert on_paper.status == TradeIntent.Status.PENDING  # paper keeps trading on sim
    assert not any(c["limit"] == "autonomy_allowed" for c in on_paper.risk_checks)


def test_the_oms_refuses_a_live_intent_accepted_while_ok_once_the_status_is_no_longer_ok(
    tenant_a, es_bars, trading_bot, system_ok
):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        _live(bot, "T3")
        intent = _submit(bot, "k", buy("1"))
        assert intent.status == TradeIntent.Status.PENDING
    ProcessHeartbeat.objects.filter(kind="worker").delete()  # the workers are gone: DEGRADED
    forget_cached_status()
    with tenancy.tenant_context(tenant_a.id):
        oms.process_pending_intents()
        intent.refresh_from_db()
    assert intent.status == TradeIntent.Status.REJECTED
    assert intent.rejection["error_code"] == "AUTONOMY_NOT_ALLOWED" and intent.rejection["checked_by"] == "oms"
    assert intent.rejection["values"]["system_status"] == "DEGRADED"
    assert "SERVICE_UNAVAILABLE" in intent.rejection["values"]["blockers"]


def _tick(tenant, bot, es):
    store_bars(es, T0 + timedelta(minutes=10), 20)
    with tenancy.tenant_context(tenant.id):
        Runner.objects.create(
            bot=bot,
            status=Runner.Status.RUNNING,
            started_by="test",
            started_at=T0,
            last_heartbeat_at=T0,
            trace_id="t-tick",
        )
    run_tick_batch(instrument=es, timeframe="1m", as_of=T0 + timedelta(minutes=30), sync_oms=False)
    with tenancy.tenant_context(tenant.id):
        return list(NoTradeTrace.objects.filter(bot_id=bot.id)), TradeIntent.objects.filter(bot=bot).count()


def test_the_tick_sends_no_opening_live_order_while_the_system_is_not_ok(tenant_a, es_bars, trading_bot):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        _live(bot, "T3")
    [trace], intents = _tick(tenant_a, bot, es_bars)
    assert intents == 0  # today: the tick sends it
    assert trace.reason_code == "AUTONOMY_NOT_ALLOWED"
    assert trace.details["error_code"] == "AUTONOMY_NOT_ALLOWED"
    [refusal] = [r for r in trace.details["refusals"] if r["limit"] == "autonomy_allowed"]
    assert refusal["values"]["system_status"] == "BLOCKED"
    assert "INTEGRATION_KEY_MISSING" in refusal["values"]["blockers"]
    with tenancy.tenant_context(tenant_a.id):
        why = why_not(bot_id=bot.id)
    assert why["reason_code"] == "AUTONOMY_NOT_ALLOWED" and "system status being OK" in why["what_would_change_it"]
