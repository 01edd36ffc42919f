"""Leg risk: the legs of one intent reach their venues together, and a leg that fails after another was sent or
filled gets the intent's failure policy, audited and alerted."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from bots import services as bot_services
from controlplane import tenancy
from controlplane.models import Alert, AuditEvent, Membership
from execution.models import Instrument, Order, TradeIntent
from execution.orders import oms, recovery
from execution.orders.intents import LegSpec, submit_intent
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0
from tests.execution.helpers import store_bars
from tests.execution.venues import ExchangeVenue, exchange_venues, rejecting, timing_out
from tests.factories import TenantFactory, UserFactory

# Long enough for any loaded machine; a sequential OMS waits it out in full, then fails the assertion.
ARRIVAL_TIMEOUT = 20


def _committed_bot(slug: str):
    tenant = TenantFactory(slug=slug)
    user = UserFactory(username=slug)
    es = Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]
    store_bars(es, T0, 3)
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OWNER)
        bot = bot_services.bot_create(
            actor=user, name="arb", strategy="ma_crossover", parameters={}, instruments=["ES"]
        )
    return tenant, bot


def test_the_legs_of_one_intent_are_sent_concurrently(django_db_setup, committed_db, settings):
    """Leg 0's venue holds its answer until leg 1 has arrived at the other venue: only concurrent sends finish."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bot = _committed_bot("legs-together")
    leg_1_arrived, leg_0_saw_leg_1 = threading.Event(), []

    def hold_until_leg_1(request):
        leg_0_saw_leg_1.append(leg_1_arrived.wait(timeout=ARRIVAL_TIMEOUT))
        return first.working(request)

    def arrive(request):
        leg_1_arrived.set()
        return second.working(request)

    first, second = ExchangeVenue("exchange-a", hold_until_leg_1), ExchangeVenue("exchange-b", arrive)
    with exchange_venues(first, second), tenancy.tenant_context(tenant.id):
        intent = submit_intent(
            bot=bot,
            legs=[LegSpec("exchange-a", "ES", "buy", Decimal(1)), LegSpec("exchange-b", "ES", "sell", Decimal(1))],
            idempotency_key="together",
            source="tick",
            bar_ts=T0,
        ).intent
        assert oms.process_pending_intents() == 1
    assert leg_0_saw_leg_1 == [True]
    assert first.sender_threads[0] != second.sender_threads[0]
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        intent.refresh_from_db()
        assert intent.status == TradeIntent.Status.WORKING
        assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.WORKING}


def test_a_rejected_leg_cancels_the_leg_sent_beside_it_audited_and_alerted(django_db_setup, committed_db, settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bot = _committed_bot("leg-rejected")
    accepting, refusing = ExchangeVenue("exchange-a"), ExchangeVenue("exchange-b", rejecting)
    with exchange_venues(accepting, refusing), tenancy.tenant_context(tenant.id):
        intent = submit_intent(
            bot=bot,
            legs=[LegSpec("exchange-a", "ES", "buy", Decimal(1)), LegSpec("exchange-b", "ES", "sell", Decimal(1))],
            idempotency_key="one-refused",
            source="tick",
            bar_ts=T0,
        ).intent
        oms.process_pending_intents()
    assert accepting.received == [f"cp-{intent.pk}-0"] and refusing.received == [f"cp-{intent.pk}-1"]
    assert accepting.cancelled == [f"cp-{intent.pk}-0"]
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        intent.refresh_from_db()
        assert intent.status == TradeIntent.Status.FAILED
        detail = intent.status_detail
        assert (detail["failed_leg"], detail["error_code"], detail["policy"]) == (
            1,
            "VENUE_REJECTED",
            "CANCEL_REMAINING",
        )
        assert [(a["leg"], a["action"]) for a in detail["actions"]] == [(0, "cancelled")]
        assert dict(Order.objects.values_list("leg__leg_index", "status")) == {0: "CANCELLED", 1: "REJECTED"}
        audit = AuditEvent.objects.get(action="intent.status", resource_id=str(intent.pk), after_state__status="FAILED")
        assert audit.after_state["detail"] == detail
        alert = Alert.objects.get(event="intent.leg_failed")
        assert (alert.severity, alert.bot_id, alert.fields["intent_id"]) == ("warning", bot.id, intent.pk)
        assert alert.fields["actions"] == detail["actions"]


@pytest.mark.parametrize(
    "policy, actions, severity",
    [("FLATTEN", ["flatten_sent"], "warning"), ("CANCEL_REMAINING", ["left_filled"], "critical")],
)
def test_a_leg_that_fails_after_the_other_filled_is_unwound_or_left_per_policy(
    tenant_a, es_bars, trading_bot, django_capture_on_commit_callbacks, policy, actions, severity
):
    """Leg 1's send times out (uncertain, left for recovery) while leg 0 fills on the sim venue; the sweep then
    proves leg 1 never arrived: FLATTEN sells what leg 0 bought, CANCEL_REMAINING leaves it and alerts critical."""
    bot = trading_bot()
    lost = ExchangeVenue("exchange-lost", timing_out)
    with exchange_venues(lost), tenancy.tenant_context(tenant_a.id):
        intent = submit_intent(
            bot=bot,
            legs=[LegSpec("sim", "ES", "buy", Decimal(1)), LegSpec("exchange-lost", "ES", "sell", Decimal(1))],
            idempotency_key="half-filled",
            source="tick",
            bar_ts=T0,
            failure_policy=policy,
        ).intent
        oms.process_pending_intents()
        intent.refresh_from_db()
        assert intent.status == TradeIntent.Status.ACCEPTED  # leg 1 unresolved: neither working nor failed
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1)) == 1
        with django_capture_on_commit_callbacks(execute=True):
            outcome = recovery.resolve_unacknowledged_orders(older_than=timedelta(0))
        assert outcome["not_found"] == [f"cp-{intent.pk}-1"] and lost.received == [f"cp-{intent.pk}-1"]
        intent.refresh_from_db()
        assert intent.status == TradeIntent.Status.FAILED and intent.status_detail["policy"] == policy
        assert intent.status_detail["error_code"] == "NOT_FOUND_AT_VENUE"
        assert [a["action"] for a in intent.status_detail["actions"]] == actions
        flattens = list(
            Order.objects.filter(intent=intent, purpose=Order.Purpose.FLATTEN).values_list("side", "quantity")
        )
        assert flattens == ([("sell", Decimal(1))] if policy == "FLATTEN" else [])
        alert = Alert.objects.get(event="intent.leg_failed")
        assert alert.severity == severity and alert.fields["failed_leg"] == 1


def test_a_leg_sent_with_an_uncertain_outcome_is_cancelled_by_client_id_when_its_sibling_fails(
    tenant_a, es_bars, trading_bot, django_capture_on_commit_callbacks
):
    """Sent together, leg 0 times out (it may be at the venue) while leg 1 is refused: leg 0 is cancelled by its
    client order id, never taken for an order that was not sent."""
    bot = trading_bot()
    lost, refusing = ExchangeVenue("exchange-lost", timing_out), ExchangeVenue("exchange-b", rejecting)
    with exchange_venues(lost, refusing), tenancy.tenant_context(tenant_a.id):
        intent = submit_intent(
            bot=bot,
            legs=[LegSpec("exchange-lost", "ES", "buy", Decimal(1)), LegSpec("exchange-b", "ES", "sell", Decimal(1))],
            idempotency_key="uncertain-and-refused",
            source="tick",
            bar_ts=T0,
        ).intent
        with django_capture_on_commit_callbacks(execute=True):
            oms.process_pending_intents()
        intent.refresh_from_db()
        assert lost.cancelled == [f"cp-{intent.pk}-0"]
        assert [(a["leg"], a["action"]) for a in intent.status_detail["actions"]] == [(0, "cancelled")]
        assert dict(Order.objects.values_list("leg__leg_index", "status")) == {0: "CANCELLED", 1: "REJECTED"}
        assert Alert.objects.get(event="intent.leg_failed").severity == "warning"
