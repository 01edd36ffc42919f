"""Idempotency under real concurrency: 50 threads on the real Postgres submit one key at once."""

from django.db import transaction

from bots import services as bot_services
from controlplane import tenancy
from controlplane.models import Membership
from execution.orders import oms
from execution.orders.intents import submit_intent
from execution.models import Instrument, Order, TradeIntent
from tests.execution.conftest import T0, buy
from tests.execution.helpers import store_bars
from tests.factories import TenantFactory, UserFactory
from tests.races import race


def test_fifty_concurrent_submissions_of_one_key_make_one_intent_and_one_order(django_db_setup, committed_db):
    tenant_a = TenantFactory(slug="race-intents")
    user = UserFactory(username="race-intents")
    es = Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]
    store_bars(es, T0, 3)
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.OWNER)
        bot = bot_services.bot_create(
            actor=user, name="racer", strategy="ma_crossover", parameters={}, instruments=["ES"]
        )
    results = []

    def submit():
        with tenancy.tenant_context(tenant_a.id):
            results.append(submit_intent(bot=bot, legs=[buy()], idempotency_key="same", source="tick", bar_ts=T0))
            oms.process_pending_intents()

    errors = race(50, submit)
    assert not errors
    assert sum(result.created for result in results) == 1 and len({r.intent.pk for r in results}) == 1
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        assert TradeIntent.objects.count() == 1 and Order.objects.count() == 1
