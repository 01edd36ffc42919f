"""The batched OMS under a real race: several processors, each on its own thread and database connection, start
together on one pending set; every leg reaches its venue exactly once, and every intent is accepted and moved on
exactly once."""

from collections import Counter
from decimal import Decimal

import pytest

from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from bots import services as bot_services
from controlplane import tenancy
from controlplane.models import AuditEvent, Membership
from execution.models import Instrument, IntentLeg, Order, TradeIntent
from execution.orders import oms
from execution.orders.intents import LegSpec, submit_intent
from execution.orders.writer import oms_writes
from tests.execution.conftest import T0
from tests.execution.helpers import store_bars
from tests.execution.venues import ExchangeVenue, exchange_venues
from tests.factories import TenantFactory, UserFactory
from tests.races import race

PROCESSORS = 4
INTENTS = 40


def _setup(slug: str):
    tenant = TenantFactory(slug=slug)
    user = UserFactory(username=slug)
    es = Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]
    store_bars(es, T0, 3)
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OWNER)
        bots = [
            bot_services.bot_create(
                actor=user, name=f"racer-{n}", strategy="ma_crossover", parameters={}, instruments=["ES"]
            )
            for n in range(5)
        ]
    return tenant, bots


def test_racing_processors_send_every_leg_exactly_once(django_db_setup, committed_db, settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("race-oms")
    venue_a, venue_b = ExchangeVenue("exchange-a"), ExchangeVenue("exchange-b")
    with exchange_venues(venue_a, venue_b):
        with tenancy.tenant_context(tenant.id):
            for n in range(INTENTS):
                legs = [LegSpec("exchange-a", "ES", "buy", Decimal(1))]
                if n % 5 == 0:  # one in five is a two-leg intent, its second leg on the other venue
                    legs.append(LegSpec("exchange-b", "ES", "sell", Decimal(1)))
                submit_intent(bot=bots[n % 5], legs=legs, idempotency_key=f"race-{n}", source="tick", bar_ts=T0)
        claimed = []

        def processor():
            with tenancy.tenant_context(tenant.id):
                claimed.append(oms.process_pending_intents(batch_size=3))

        errors = race(PROCESSORS, processor)

    assert not errors
    assert sum(claimed) == INTENTS
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        expected = {
            f"cp-{intent_id}-{leg_index}"
            for intent_id, leg_index in IntentLeg.objects.values_list("intent_id", "leg_index")
        }
        sent = Counter(venue_a.received + venue_b.received)
        assert len(expected) == INTENTS + INTENTS // 5
        assert set(sent) == expected and set(sent.values()) == {1}  # each leg once, none twice, none missing
        assert set(TradeIntent.objects.values_list("status", flat=True)) == {TradeIntent.Status.WORKING}
        orders = list(Order.objects.values_list("client_order_id", "status", "venue_order_id"))
        assert {client_id for client_id, _, _ in orders} == expected
        assert all(status == Order.Status.WORKING and venue_id for _, status, venue_id in orders)
        moves = Counter(
            (row["resource_id"], row["after_state"]["status"])
            for row in AuditEvent.objects.filter(action="intent.status").values("resource_id", "after_state")
        )
        assert set(moves.values()) == {1} and len(moves) == 2 * INTENTS  # ACCEPTED once, WORKING once, per intent


def test_a_batch_rechecks_each_intent_after_the_orders_of_the_ones_before_it(tenant_a, es_bars, trading_bot):
    """One batch, one transaction: a rate limit still counts the orders of the intents claimed before in the same
    batch, as it would one intent at a time."""
    bot = trading_bot(risk_limits={"max_orders_per_minute": 2})
    with tenancy.tenant_context(tenant_a.id):
        for n in range(3):
            submit_intent(
                bot=bot,
                legs=[LegSpec("sim", "ES", "buy", Decimal(1))],
                idempotency_key=f"rate-{n}",
                source="tick",
                bar_ts=T0,
            )
        assert oms.process_pending_intents(batch_size=10) == 3
        statuses = list(TradeIntent.objects.order_by("id").values_list("status", flat=True))
        assert statuses == ["WORKING", "WORKING", "REJECTED"]
        third = TradeIntent.objects.order_by("id").last()
        assert third.rejection["limit"] == "max_orders_per_minute" and third.rejection["checked_by"] == "oms"
        assert Order.objects.count() == 2


def test_a_batch_counts_its_earlier_orders_in_the_tenant_scope_and_the_duplicate_window(tenant_a, es_bars, trading_bot):
    """The risk state is read once per batch (issue 18): the orders accepted before an intent in the same batch
    still count, in the tenant's scope across bots (its rate limit) and in a bot's duplicate window."""
    from execution.models import TradingControl

    bots = [trading_bot(name=f"tenant-rate-{n}") for n in range(3)]
    dup = trading_bot(name="dup", risk_limits={"duplicate_window_seconds": 300})
    with tenancy.tenant_context(tenant_a.id):
        TradingControl.objects.create(bot=None, risk_limits={"max_orders_per_minute": 3})
        for n, bot in enumerate([*bots, dup, dup]):  # five intents of one leg each; the tenant allows three
            submit_intent(
                bot=bot,
                legs=[LegSpec("sim", "ES", "buy", Decimal(1))],
                idempotency_key=f"tenant-rate-{n}",
                source="tick",
                bar_ts=T0,
            )
        assert oms.process_pending_intents(batch_size=10) == 5
        intents = list(TradeIntent.objects.order_by("id"))
        assert [i.status for i in intents] == ["WORKING", "WORKING", "WORKING", "REJECTED", "REJECTED"]
        assert {i.rejection["limit"] for i in intents[3:]} == {"max_orders_per_minute"}
        assert {i.rejection["scope"] for i in intents[3:]} == {"tenant"}
        TradingControl.objects.filter(bot=None).update(risk_limits={})
        for n in range(2):
            submit_intent(
                bot=dup,
                legs=[LegSpec("sim", "ES", "sell", Decimal(2))],
                idempotency_key=f"dup-{n}",
                source="tick",
                bar_ts=T0,
            )
        assert oms.process_pending_intents(batch_size=10) == 2
        first, second = TradeIntent.objects.order_by("-id")[:2][::-1]
        assert (first.status, second.status) == ("WORKING", "REJECTED")
        assert second.rejection["limit"] == "duplicate_order" and second.rejection["checked_by"] == "oms"


def _two_racing_oms_runs(tenant, *, batch_size: int) -> list[Exception]:
    """Two threads (each its own connection) start ``process_pending_intents`` of the tenant at the same moment;
    returns what they raised."""

    def processor():
        with tenancy.tenant_context(tenant.id):
            oms.process_pending_intents(batch_size=batch_size)

    return race(2, processor)


def test_racing_batches_of_one_tenant_are_checked_one_after_the_other(django_db_setup, committed_db, settings):
    """Two workers claim two batches of one tenant at the same moment: the second batch's risk re-check counts
    the first one's orders, so together they pass the tenant's rate limit no further than one worker would.
    (Checked at once, each saw no order of the other and both batches went out.)"""
    from execution.models import TradingControl

    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("race-limits")
    with tenancy.tenant_context(tenant.id):
        TradingControl.objects.create(bot=None, risk_limits={"max_orders_per_minute": 3})
        for n in range(6):
            submit_intent(
                bot=bots[n % 5],
                legs=[LegSpec("sim", "ES", "buy", Decimal(1))],
                idempotency_key=f"limit-race-{n}",
                source="tick",
                bar_ts=T0,
            )
    assert not _two_racing_oms_runs(tenant, batch_size=3)
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        statuses = Counter(TradeIntent.objects.values_list("status", flat=True))
        assert statuses == {TradeIntent.Status.WORKING: 3, TradeIntent.Status.REJECTED: 3}
        assert Order.objects.count() == 3
        rejected = TradeIntent.objects.filter(status=TradeIntent.Status.REJECTED)
        assert {(i.rejection["limit"], i.rejection["scope"]) for i in rejected} == {("max_orders_per_minute", "tenant")}


def test_racing_batches_of_one_bot_are_checked_one_after_the_other(django_db_setup, committed_db, settings):
    """Without tenant limits that count orders, batches are checked under their bots' locks, in parallel when their
    bots differ: two batches of the same bot still see each other's orders, so together they pass the bot's rate
    limit no further than one worker would."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("race-bot-limits")
    bot = bots[0]
    with tenancy.tenant_context(tenant.id):
        bot.risk_limits = {"max_orders_per_minute": 3}
        bot.save(update_fields=["risk_limits"])
        for n in range(6):
            submit_intent(
                bot=bot,
                legs=[LegSpec("sim", "ES", "buy", Decimal(1))],
                idempotency_key=f"bot-limit-race-{n}",
                source="tick",
                bar_ts=T0,
            )
    assert not _two_racing_oms_runs(tenant, batch_size=3)
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        statuses = Counter(TradeIntent.objects.values_list("status", flat=True))
        assert statuses == {TradeIntent.Status.WORKING: 3, TradeIntent.Status.REJECTED: 3}
        rejected = TradeIntent.objects.filter(status=TradeIntent.Status.REJECTED)
        assert {(i.rejection["limit"], i.rejection["scope"]) for i in rejected} == {("max_orders_per_minute", "bot")}


def test_a_batch_checked_under_its_bots_locks_starts_over_when_the_tenant_counts_orders(tenant_a, es_bars, trading_bot):
    """The locks a batch takes are chosen from the tenant's limits read before them; if the limits read with the
    risk state under those locks count orders across bots (set meanwhile), the batch is rolled back, claim
    included, and checked again under the tenant's lock."""
    from execution.models import TradingControl

    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        TradingControl.objects.create(bot=None, risk_limits={"max_orders_per_minute": 1})
        submit_intent(
            bot=bot, legs=[LegSpec("sim", "ES", "buy", Decimal(1))], idempotency_key="a", source="tick", bar_ts=T0
        )
        submit_intent(
            bot=bot, legs=[LegSpec("sim", "ES", "buy", Decimal(1))], idempotency_key="b", source="tick", bar_ts=T0
        )
        intents = list(TradeIntent.objects.select_related("bot").order_by("id"))
        with pytest.raises(oms._TenantLockNeeded), transaction.atomic():
            oms._accept_or_reject_batch(intents, tenant_id=tenant_a.id, whole_tenant=False)
        assert not Order.objects.exists()
        assert oms.process_pending_intents() == 2
        assert sorted(TradeIntent.objects.values_list("status", flat=True)) == ["REJECTED", "WORKING"]


def test_an_oms_block_that_opens_its_transaction_is_marked_at_its_begin_and_the_next_one_is_not(
    django_db_setup, committed_db, settings
):
    """A block that opens its transaction writes the OMS's mark in the statement that writes the tenant context
    at its BEGIN (old code: a statement of its own, a round trip on every claim and every record of the venues'
    answers); the transaction opened after it is not marked."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("mark-at-begin")
    with tenancy.tenant_context(tenant.id):
        submit_intent(
            bot=bots[0],
            legs=[LegSpec("sim", "ES", "buy", Decimal(1))],
            idempotency_key="mark",
            source="tick",
            bar_ts=T0,
        )
        assert oms.process_pending_intents() == 1
        order = Order.objects.get()
        with CaptureQueriesContext(connection) as queries, oms_writes():
            Order.objects.filter(pk=order.pk).update(reason="marked at begin")
        assert not [q["sql"] for q in queries if "app_oms_write_begin" in q["sql"]]
        with pytest.raises(DatabaseError, match="only the OMS"), transaction.atomic():
            Order.objects.filter(pk=order.pk).update(reason="not the OMS")
        assert Order.objects.get().reason == "marked at begin"


def test_an_oms_block_that_opens_its_transaction_ends_its_mark_at_commit_without_a_round_trip(
    django_db_setup, committed_db, settings
):
    """The mark of a block that opens its transaction is deleted at its COMMIT by a deferred trigger (old code:
    ``app_oms_write_end()`` in a round trip of its own before every OMS commit); a block nested in another
    transaction still ends its mark on its way out, so the enclosing transaction's later writes are refused."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("mark-at-commit")
    with tenancy.tenant_context(tenant.id):
        submit_intent(
            bot=bots[0], legs=[LegSpec("sim", "ES", "buy", Decimal(1))], idempotency_key="end", source="tick", bar_ts=T0
        )
        assert oms.process_pending_intents() == 1
        order = Order.objects.get()
        with CaptureQueriesContext(connection) as queries, oms_writes():
            Order.objects.filter(pk=order.pk).update(reason="ended at commit")
        assert not [q["sql"] for q in queries if "app_oms_write_end" in q["sql"]]
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM cp_private.oms_write_txn")
            assert cursor.fetchone()[0] == 0
        with pytest.raises(DatabaseError, match="only the OMS"), transaction.atomic():
            Order.objects.filter(pk=order.pk).update(reason="not the OMS")
        with pytest.raises(DatabaseError, match="only the OMS"), transaction.atomic():
            with oms_writes():
                Order.objects.filter(pk=order.pk).update(reason="nested")
            Order.objects.filter(pk=order.pk).update(reason="after the nested block")
        with transaction.atomic():
            with oms_writes():
                Order.objects.filter(pk=order.pk).update(reason="nested")
        assert Order.objects.get().reason == "nested"
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM cp_private.oms_write_txn")
            assert cursor.fetchone()[0] == 0


def test_an_oms_run_that_claims_nothing_writes_nothing_and_a_claim_marks_its_transaction(
    django_db_setup, committed_db, settings
):
    """A claim that finds nothing leaves its transaction read-only (old code: the OMS's mark written at its BEGIN,
    so a quarter of the runs at 100/s committed a write with a WAL flush to claim nothing); a claim that finds an
    intent marks its transaction in its own statement, before the batch writes its orders."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("empty-run")
    assigned = []

    def after_the_claim(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "SKIP LOCKED" in sql:  # the transaction's id, if any statement so far wrote something
            assigned.append(
                context["connection"].connection.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()[0]
            )
        return result

    with tenancy.tenant_context(tenant.id):
        with connection.execute_wrapper(after_the_claim):
            assert oms.process_pending_intents() == 0
        assert assigned == [None]
        submit_intent(
            bot=bots[0], legs=[LegSpec("sim", "ES", "buy", Decimal(1))], idempotency_key="one", source="tick", bar_ts=T0
        )
        with connection.execute_wrapper(after_the_claim):
            assert oms.process_pending_intents() == 1
        assert assigned[1] is not None
        assert Order.objects.get().status == Order.Status.WORKING


def test_the_send_s_lock_and_the_record_of_the_answers_are_each_one_round_trip(django_db_setup, committed_db, settings):
    """Outside a caller's transaction, the send's lock of its intents and the record of the venues' answers are each
    a transaction sent in one message (BEGIN, the tenant context, the statement, COMMIT; old code: four round trips
    each, two of them before the "sent" time was stamped); the outcome is the same: the orders WORKING with their
    venue ids, the intents WORKING with one audit row per move, no OMS mark left behind."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("one-trip-oms")
    with tenancy.tenant_context(tenant.id):
        for n in range(3):
            submit_intent(
                bot=bots[n],
                legs=[LegSpec("sim", "ES", "buy", Decimal(1))],
                idempotency_key=f"trip-{n}",
                source="tick",
                bar_ts=T0,
            )
        with CaptureQueriesContext(connection) as queries:
            assert oms.process_pending_intents() == 3
        whole = [q["sql"] for q in queries if q["sql"].startswith("BEGIN;") and q["sql"].endswith("COMMIT")]
        assert len(whole) == 2, [q["sql"][:80] for q in queries]
        assert "synchronous_commit" in whole[0] and "app_oms_write_begin()" in whole[1]
        assert set(TradeIntent.objects.values_list("status", flat=True)) == {TradeIntent.Status.WORKING}
        orders = list(Order.objects.values_list("client_order_id", "status", "venue_order_id"))
        assert len(orders) == 3 and all(s == Order.Status.WORKING and v == f"sim-{c}" for c, s, v in orders)
        moves = Counter(
            (row["resource_id"], row["after_state"]["status"])
            for row in AuditEvent.objects.filter(action="intent.status").values("resource_id", "after_state")
        )
        assert set(moves.values()) == {1} and len(moves) == 6
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cp_private.oms_write_txn")
        assert cursor.fetchone()[0] == 0


def test_a_paper_batch_s_claim_commits_without_waiting_for_the_flush_and_a_live_one_waits(
    django_db_setup, committed_db, settings
):
    """The claim's commit makes the orders SUBMITTING durable before any venue call (at most once across a crash).
    A batch whose every order goes to a sim venue, which keeps nothing outside this database, skips that flush
    (old code: every claim waited for it): its statement sets synchronous_commit off for its own transaction. A
    batch with a live venue's order, or one that rejected an intent, keeps it."""
    from bots.models import Bot

    settings.OMS_ENQUEUE_ON_SUBMIT = False
    tenant, bots = _setup("unflushed-claim")

    rounds = iter(range(10))

    def claim_sql(legs_of, before_claim=lambda: None) -> str:
        round_ = next(rounds)
        with tenancy.tenant_context(tenant.id):
            for n, legs in enumerate(legs_of):
                submit_intent(bot=bots[n], legs=legs, idempotency_key=f"flush-{round_}-{n}", source="tick", bar_ts=T0)
            before_claim()
            with CaptureQueriesContext(connection) as queries:
                assert oms.process_pending_intents() == len(legs_of)
        [insert] = [q["sql"] for q in queries if 'INSERT INTO "execution_order"' in q["sql"]]
        return insert

    paper = [LegSpec("sim", "ES", "buy", Decimal(1))]
    live = [LegSpec("exchange-a", "ES", "buy", Decimal(1))]
    with exchange_venues(ExchangeVenue("exchange-a")):
        assert "'synchronous_commit', 'off'" in claim_sql([paper, paper])
        assert "synchronous_commit" not in claim_sql([paper, live])

        def refuse_the_second_bot():  # after its intent passed the first check: the OMS's check refuses it
            Bot.objects.filter(pk=bots[1].pk).update(killed=True)

        assert "synchronous_commit" not in claim_sql([paper, paper], refuse_the_second_bot)
    with tenancy.tenant_context(tenant.id):
        statuses = Counter(TradeIntent.objects.values_list("status", flat=True))
        assert statuses == {TradeIntent.Status.WORKING: 5, TradeIntent.Status.REJECTED: 1}, statuses
