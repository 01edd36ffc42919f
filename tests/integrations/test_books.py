"""Paper and live books of one bot never mix (issue 13, defect 1): a PAPER bot's +2 on the sim venue is not its
live position after promotion, not what its venue is reconciled against, not its live PnL, drawdown or day; the
LIVE gate starts from a fresh MATCHED reconcile of the live book. Against a local Tradovate in its documented
shapes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bots import services as bot_services
from bots.gates import promotion_gates
from bots.models import Bot, Reconciliation, Stage
from controlplane import tenancy
from execution import oms
from execution.breakers import drawdown_sweep_tenant
from execution.intents import LegSpec, risk_refusal, submit_intent
from execution.models import EquityWatermark, Order, StrategyPosition, VenueInventory
from execution.risk_state import risk_snapshot
from execution.venues.sim import match_working_orders
from integrations.providers.futures_contracts import tradovate_symbol
from integrations.providers.tradovate.fake import ACCOUNT, fill, position, serve_session
from tests.execution.helpers import store_bars
from tests.integrations.live_bots import es_instrument, live_tradovate_bot
from tests.status_fixtures import make_system_ok
from traces.models import ProfitVariables

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


@pytest.fixture
def tradovate(point_at, settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    return point_at("tradovate")


@pytest.fixture
def system_ok(tenant_a, owner_a, tradovate, httpserver, settings):
    """A LIVE bot's opening order needs the system OK (AUTONOMY_NOT_ALLOWED otherwise): made from real components."""

    def make():
        serve_session(tradovate)
        make_system_ok(tenant=tenant_a, owner=owner_a, httpserver=httpserver, settings=settings, verify=("tradovate",))

    return make


@pytest.fixture
def recent():
    """Hourly bars up to the last complete hour, so every mark is fresh: bar i opens at 100 + i."""
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - 10 * HOUR
    store_bars(es_instrument(), start, 10, timeframe="1h")
    return start


def _paper_bot_long_two_on_sim(tenant, owner, start, *, risk_limits=None):
    """A PAPER bot whose venue is Tradovate, long 2 ES on the sim venue (bought at bar 1's open, 101; no costs)."""
    bot = live_tradovate_bot(tenant=tenant, owner=owner)
    with tenancy.tenant_context(tenant.id):
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.PAPER, risk_limits=risk_limits or {})
        bot.refresh_from_db()
        submit_intent(
            bot=bot,
            legs=[LegSpec(venue="sim", symbol="ES", side="buy", quantity=Decimal(2))],
            idempotency_key="paper-2",
            source="tick",
            bar_ts=start,
        )
        oms.process_pending_intents()
        assert match_working_orders(instrument=es_instrument(), timeframe="1h", bar_ts=start + HOUR) == 1
    return bot


def _promote_in_place(bot):
    Bot.objects.filter(pk=bot.pk).update(stage=Stage.LIVE)
    bot.refresh_from_db()


def _account_flat(server):
    serve_session(server)
    server.expect_request("/position/list").respond_with_json([])


def _account_holds_es(server, net: int):
    serve_session(server)
    server.expect_request("/position/list").respond_with_json(
        [position(1, account_id=ACCOUNT["id"], contract_id=55, net_pos=net)]
    )
    server.expect_request("/contract/item", query_string="id=55").respond_with_json(
        {"id": 55, "name": tradovate_symbol("ES"), "contractMaturityId": 1}
    )


def test_after_promotion_the_live_risk_check_reads_the_live_book_not_the_paper_plus_two(
    tenant_a, owner_a, tradovate, recent, system_ok
):
    bot = _paper_bot_long_two_on_sim(tenant_a, owner_a, recent, risk_limits={"max_position": "2"})
    system_ok()
    now = timezone.now()
    with tenancy.tenant_context(tenant_a.id):
        assert risk_snapshot(bots=[bot], instrument="ES", at=now).positions == {bot.id: Decimal(2)}
        _promote_in_place(bot)
        assert risk_snapshot(bots=[bot], instrument="ES", at=now).positions == {bot.id: Decimal(0)}
        # The first live order: buy 2 at the venue. Sized against the paper +2 it would be 4 > max_position 2.
        leg = LegSpec(
            venue="tradovate",
            symbol="ES",
            side="buy",
            quantity=Decimal(2),
            order_type="limit",
            limit_price=Decimal("105"),
        )
        refusal, checks, _ = risk_refusal(bot=bot, legs=[(leg, es_instrument())], bar_ts=None, at=now)
        assert refusal is None, refusal
        position_check = next(c for c in checks if c["limit"] == "max_position" and c["scope"] == "bot")
        assert Decimal(str(position_check["values"]["position"])) == 0
        # The same bot's leg to the sim venue is still checked against its paper book.
        paper_leg = LegSpec(venue="sim", symbol="ES", side="buy", quantity=Decimal(2))
        refusal, _, _ = risk_refusal(bot=bot, legs=[(paper_leg, es_instrument())], bar_ts=None, at=now)
        assert refusal is not None and refusal["limit"] == "max_position"


def test_a_paper_bots_sim_position_is_not_reconciled_against_its_live_venue(tenant_a, owner_a, tradovate, recent):
    bot = _paper_bot_long_two_on_sim(tenant_a, owner_a, recent)
    _account_flat(tradovate)
    with tenancy.tenant_context(tenant_a.id):
        report = bot_services.bot_reconcile(bot_id=bot.id, actor=owner_a)
    assert (report.status, report.book, report.internal_positions) == (Reconciliation.Status.MATCHED, "live", {})


def test_live_fills_move_the_live_book_only(tenant_a, owner_a, tradovate, recent, system_ok):
    bot = _paper_bot_long_two_on_sim(tenant_a, owner_a, recent)
    system_ok()
    serve_session(tradovate)
    tradovate.expect_request("/order/placeorder").respond_with_json({"orderId": 9301})
    with tenancy.tenant_context(tenant_a.id):
        _promote_in_place(bot)
        intent = submit_intent(
            bot=bot,
            legs=[
                LegSpec(
                    venue="tradovate",
                    symbol="ES",
                    side="buy",
                    quantity=Decimal(1),
                    order_type="limit",
                    limit_price=Decimal("6000.25"),
                )
            ],
            idempotency_key="live-1",
            source="api",
            actor_name="test",
        ).intent
        oms.process_pending_intents()
        order = Order.objects.get(intent=intent)
        tradovate.expect_request("/command/list").respond_with_json(
            [{"id": 1, "orderId": 9301, "clOrdId": order.client_order_id, "commandType": "New"}]
        )
        tradovate.expect_request("/fill/list").respond_with_json([fill(51, 9301, qty=1)])
        tradovate.expect_request("/fillFee/list").respond_with_json([])
        assert oms.sync_live_fills() == {"recorded": 1, "failures": []}
        positions = dict(StrategyPosition.objects.filter(bot=bot).values_list("book", "quantity"))
        days = dict(ProfitVariables.objects.filter(bot_id=bot.id).values_list("book", "fills"))
        inventory = dict(VenueInventory.objects.values_list("venue", "book"))
    assert positions == {"paper": Decimal(2), "live": Decimal(1)}
    assert days == {"paper": 1, "live": 1}
    assert inventory == {"sim": "paper", "tradovate": "live"}


def test_the_drawdown_breaker_of_a_live_bot_ignores_its_paper_losses(tenant_a, owner_a, tradovate, recent):
    bot = _paper_bot_long_two_on_sim(tenant_a, owner_a, recent, risk_limits={"max_drawdown": "100"})
    with tenancy.tenant_context(tenant_a.id):
        assert drawdown_sweep_tenant() == {"within_limit": 1}  # paper peak: (109.5 - 101) x 2 x 50 = 850
        _promote_in_place(bot)
        # A crash on the sim book: far past max_drawdown on paper.
        StrategyPosition.objects.filter(bot=bot, book="paper").update(average_price=Decimal("200"))
        assert drawdown_sweep_tenant() == {"within_limit": 1}
        bot.refresh_from_db()
        marks = dict(EquityWatermark.objects.filter(bot=bot).values_list("book", "equity"))
    assert bot.killed is False
    assert marks == {"paper": Decimal(850), "live": Decimal(0)}


def test_the_live_gate_requires_a_fresh_matched_reconcile_of_the_live_book(
    tenant_a, owner_a, tradovate, recent, settings
):
    bot = _paper_bot_long_two_on_sim(tenant_a, owner_a, recent)

    def gate():
        with tenancy.tenant_context(tenant_a.id):
            bot.refresh_from_db()
            return next(g for g in promotion_gates(bot, Stage.LIVE, actor=owner_a) if g.gate == "live_reconcile")

    missing = gate()
    assert not missing.passed and "No reconcile of the live book with tradovate" in missing.message
    assert f"POST /api/bots/{bot.id}/reconcile" in missing.suggested_fix

    _account_holds_es(tradovate, 1)  # someone holds 1 ES in the account: the live book (0) disagrees
    with tenancy.tenant_context(tenant_a.id):
        mismatch = bot_services.bot_reconcile(bot_id=bot.id, actor=owner_a)
    assert mismatch.status == "MISMATCH"
    failed = gate()
    assert not failed.passed and f"({mismatch.id})" in failed.message and "MISMATCH" in failed.message

    tradovate.clear()
    _account_flat(tradovate)
    with tenancy.tenant_context(tenant_a.id):
        matched = bot_services.bot_reconcile(bot_id=bot.id, actor=owner_a)
    assert matched.status == "MATCHED"
    assert gate().passed

    with tenancy.tenant_context(tenant_a.id):
        Reconciliation.objects.filter(pk=matched.pk).update(
            created_at=timezone.now() - timedelta(seconds=settings.BOT_LIVE_RECONCILE_MAX_AGE_SECONDS + 5)
        )
    stale = gate()
    assert not stale.passed and "old; going LIVE needs one from the last" in stale.message


def test_the_live_gate_has_nothing_to_reconcile_for_a_bot_on_the_sim_venue(tenant_a, owner_a):
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a,
            name="sim-only",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
        result = next(g for g in promotion_gates(bot, Stage.LIVE, actor=owner_a) if g.gate == "live_reconcile")
    assert result.passed and "sim venue" in result.message


def test_the_pnl_api_answers_one_book_and_says_which(tenant_a, owner_a, api_operator_a, tradovate, recent):
    bot = _paper_bot_long_two_on_sim(tenant_a, owner_a, recent)
    paper = api_operator_a.get(f"/api/bots/{bot.id}/pnl").json()  # PAPER: the paper book by default
    assert paper["book"] == "paper" and [(p["instrument"], p["book"], p["quantity"]) for p in paper["positions"]] == [
        ("ES", "paper", "2.000000000")
    ]
    assert paper["stale"] is False and paper["positions"][0]["mark_stale"] is False
    with tenancy.tenant_context(tenant_a.id):
        _promote_in_place(bot)
    live = api_operator_a.get(f"/api/bots/{bot.id}/pnl").json()  # LIVE: the live book by default
    assert (live["book"], live["positions"], live["days"], live["realized_pnl"]) == ("live", [], [], "0")
    again = api_operator_a.get(f"/api/bots/{bot.id}/pnl?book=paper").json()
    assert again["book"] == "paper" and again["positions"][0]["quantity"] == "2.000000000"
    wrong = api_operator_a.get(f"/api/bots/{bot.id}/pnl?book=both")
    assert wrong.status_code == 400 and wrong.json()["error_code"] == "VALIDATION_ERROR"
    assert "book" in wrong.json()["details"]
