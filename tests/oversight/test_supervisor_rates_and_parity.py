"""The order-rate triggers over real orders of the OMS, and the parity trigger over a real autonomy score record."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backtests.models import AutonomyScore
from controlplane import tenancy
from execution.models import Order
from execution.orders import oms
from execution.orders.intents import LegSpec, submit_intent
from execution.orders.writer import oms_writes
from oversight.models import SupervisorBreach
from oversight.supervisor.sweep import supervisor_sweep
from tests.execution.helpers import store_bars
from tests.oversight.conftest import breaches, state_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def es_bars_now(es):
    """Bars up to the last minute: the OMS values each order at the latest bar."""
    now = timezone.now().replace(second=0, microsecond=0)
    store_bars(es, now - timedelta(minutes=10), 10)


def _orders(bot, n: int) -> list[Order]:
    with tenancy.tenant_context(bot.tenant_id):
        for i in range(n):
            leg = LegSpec(venue="sim", symbol="ES", side="buy", quantity=Decimal(1))
            submit_intent(bot=bot, legs=[leg], idempotency_key=f"rate-{bot.id}-{i}", source="api")
        oms.process_pending_intents()
        return list(Order.objects.filter(bot=bot).order_by("id"))


def _mark(bot, orders, status, error_code):
    """What the OMS records when the venue refuses an order (REJECTED) or the call fails (FAILED)."""
    with tenancy.tenant_context(bot.tenant_id), oms_writes():
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(status=status, error_code=error_code)


def _open(bot, trigger):
    return [b for b in breaches(bot, trigger) if b.cleared_at is None]


def test_a_reject_rate_past_the_threshold_reduces_only_and_one_below_does_not(make_bot):
    rejected, fine = make_bot("rejected"), make_bot("fine")
    orders = _orders(rejected, 4)
    assert len(orders) == 4
    _mark(rejected, orders[:2], Order.Status.REJECTED, "ORDER_REJECTED")  # 2 of 4: 0.5
    _mark(fine, _orders(fine, 4)[:1], Order.Status.REJECTED, "ORDER_REJECTED")  # 1 of 4: 0.25
    supervisor_sweep()
    [breach] = _open(rejected, "reject_rate")
    assert (breach.step, breach.value, breach.threshold) == (SupervisorBreach.Step.REDUCE_ONLY, 0.5, 0.5)
    assert breach.values["rejected"] == 2 and breach.values["total"] == 4
    assert state_of(rejected) == "REDUCE_ONLY"
    assert _open(fine, "reject_rate") == [] and state_of(fine) == "ACTIVE"


def test_a_venue_error_rate_past_the_threshold_halts(make_bot):
    failing = make_bot("failing")
    orders = _orders(failing, 5)
    _mark(failing, orders[:2], Order.Status.FAILED, "VENUE_UNAVAILABLE")  # 2 of 5: 0.4 >= 0.3
    supervisor_sweep()
    [breach] = _open(failing, "venue_error_rate")
    assert breach.step == SupervisorBreach.Step.HALTED and breach.value == 0.4
    assert state_of(failing) == "HALTED"


def test_orders_outside_the_window_do_not_count(make_bot):
    old = make_bot("old")
    orders = _orders(old, 4)
    _mark(old, orders, Order.Status.REJECTED, "ORDER_REJECTED")
    supervisor_sweep(now=timezone.now() + timedelta(seconds=901))
    assert _open(old, "reject_rate") == []


def _score(bot, parity):
    with tenancy.tenant_context(bot.tenant_id):
        AutonomyScore.objects.create(
            bot=bot,
            tier=bot.autonomy_tier,
            score=0.9,
            breakdown={"paper_parity": {"parity": parity}},
            gates=[],
            trigger=AutonomyScore.Trigger.SCHEDULE,
            trace_id="t",
        )


def test_parity_applies_only_once_both_books_hold_fills(make_bot):
    from oversight.supervisor.triggers import parity

    live = make_bot("live-no-fills", stage="LIVE", tier="T3")
    _score(live, 0.1)
    with tenancy.tenant_context(live.tenant_id):
        assert parity(live, {"min_parity": 0.8}, timezone.now()) is None  # no fills in either book yet


def _fill(bot, order, venue):
    from execution.models import Fill

    with tenancy.tenant_context(bot.tenant_id), oms_writes():
        Fill.objects.create(
            order=order,
            bot=bot,
            venue=venue,
            instrument=order.instrument,
            venue_fill_id=f"{venue}-{order.id}",
            side="buy",
            quantity=Decimal(1),
            price=Decimal(100),
            bot_stage=bot.stage,
            ts=timezone.now(),
            trace_id="t",
        )


@pytest.mark.parametrize("value, breached", [(0.5, True), (0.9, False)])
def test_parity_below_the_floor_reduces_a_live_bot_with_both_books(make_bot, value, breached):
    from bots.models import Reconciliation

    from bots.models import Bot

    bot = make_bot("both-books", tier="T3")
    [order] = _orders(bot, 1)  # sent while PAPER: a LIVE bot's order needs a system status OK
    with tenancy.tenant_context(bot.tenant_id):
        Bot.objects.filter(pk=bot.pk).update(stage="LIVE")
        bot.refresh_from_db()
        Reconciliation.objects.create(
            bot=bot, status="MATCHED", venue="sim", book="live", is_flat=True, requested_by="t", trace_id="t"
        )
    _fill(bot, order, "sim")  # the paper book
    _fill(bot, order, "tradovate")  # the live book
    _score(bot, value)
    supervisor_sweep()
    found = _open(bot, "parity")
    if breached:
        assert (found[0].step, found[0].value, found[0].threshold) == (SupervisorBreach.Step.REDUCE_ONLY, 0.5, 0.8)
    else:
        assert found == []
