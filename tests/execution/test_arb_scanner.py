"""The spot arbitrage scanner as a bot (issue 18), on quotes collected through the real ccxt code from local servers
speaking each venue's documented order-book shapes (integrations/providers/<venue>/fake.py): arb_spreads rows, one
trace per scan, one multi-leg intent per opportunity window, paper fills on the sim twins against the recorded
quotes, arb_pnl, a stale venue, a rejected leg, kill switches, and a replay that emits the live scanner's intents."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bots import services as bot_services
from bots.models import Bot, Runner
from controlplane import tenancy
from execution.arbitrage.batches import run_scan_batch
from execution.arbitrage.replay import replay_scans
from execution.arbitrage.scanner import scan_tenant
from execution.models import ArbPnl, ArbSpread, Fill, Order, TradeIntent, VenueInventory
from execution.orders.oms import process_pending_intents
from execution.tick.batches import instruments_to_tick
from traces.models import TickTrace
from tests.execution.arb_helpers import T1, collect, fund, legs_of, scanner_bot, trace_of, venues  # noqa: F401
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

pytestmark = pytest.mark.django_db


def test_a_paper_scan_prices_every_pair_emits_one_two_leg_intent_fills_on_the_sim_twins_and_books_arb_pnl(
    venues, tenant_a, owner_a
):
    collect(T1)
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        totals = scan_tenant(as_of=T1, bots=[bot])

        assert (totals.intents_created, totals.bots) == (1, 1)
        intent = TradeIntent.objects.get()
        assert legs_of(intent) == [
            ("sim-kraken", "buy", Decimal("0.5"), "limit", Decimal("50010")),
            ("sim-coinbase", "sell", Decimal("0.5"), "limit", Decimal("50300")),
        ]
        assert (intent.failure_policy, intent.source, intent.bar_ts) == ("FLATTEN", "tick", T1)
        assert intent.idempotency_key == f"arb:{bot.id}:BTC-USD:kraken>coinbase:{T1.replace(second=0).isoformat()}"
        # Three pairs have the sell bid above the buy ask (kraken>coinbase, kraken>binanceus, binanceus>coinbase);
        # the two with a positive net edge are rows, the best acted on, the other saying why not. The third (18 bps
        # gross against 20 bps of fees) is counted in the trace only.
        spreads = {(s.buy_venue, s.sell_venue): s for s in ArbSpread.objects.all()}
        assert sorted(spreads) == [("kraken", "binanceus"), ("kraken", "coinbase")]
        best = spreads[("kraken", "coinbase")]
        assert (best.acted, best.intent_id, best.why_not) == (True, intent.id, "")
        assert (best.gross_spread, best.buy_fee, best.sell_fee) == (
            Decimal("290"),
            Decimal("25.005"),  # 0.5 x 50010 x 0.1%
            Decimal("25.15"),
        )
        assert best.fee_sources == {"kraken": "settings:ARB_TAKER_FEES", "coinbase": "settings:ARB_TAKER_FEES"}
        # Slippage: 5 bps of each notional x the share of the quoted size taken (0.5 of 0.75, 0.5 of 1.25).
        expected_slippage = Decimal("0.0005") * (25005 * Decimal(0.5) / Decimal("0.75") + 25150 * Decimal("0.4"))
        assert abs(best.expected_slippage - expected_slippage) < Decimal("0.000001")
        assert best.net_edge == (145 - Decimal("50.155") - best.expected_slippage).quantize(Decimal("1e-10"))
        assert best.executable_size == Decimal("0.5")
        assert spreads[("kraken", "binanceus")].why_not == "inventory: binanceus holds no BTC-USD"
        assert trace_of(bot, T1).details["priced"] == 3
        trace = trace_of(bot, T1)
        assert (trace.kind, trace.intent_id) == ("decision", intent.id)
        assert trace.signal["legs"] == "kraken>coinbase" and round(trace.signal["net_edge_bps"], 4) == float(
            best.net_edge_bps
        )
        assert trace.inputs["quotes"] == 3 and trace.inputs["max_quote_age_ms"] == 1000

        # A rescan of the same opportunity in the same window creates nothing and says so.
        t2 = T1 + timedelta(seconds=2)
        collect(t2)
        assert scan_tenant(as_of=t2, bots=[bot]).intents_created == 0
        again = trace_of(bot, t2)
        assert (again.reason_code, again.details["already_acted"]["intent_id"]) == ("COOLDOWN", intent.id)
        assert TradeIntent.objects.count() == 1

        # The OMS sends both legs to the sim twins; the next scan fills them against the recorded quotes.
        process_pending_intents()
        assert set(Order.objects.values_list("venue", "status")) == {
            ("sim-kraken", "WORKING"),
            ("sim-coinbase", "WORKING"),
        }
        t3 = t2 + timedelta(seconds=2)
        collect(t3)
        assert scan_tenant(as_of=t3, bots=[bot]).fills == 2
        intent.refresh_from_db()
        assert intent.status == "FILLED"
        fills = {f.venue: (f.side, f.quantity, f.price, f.fee) for f in Fill.objects.all()}
        assert fills == {
            "sim-kraken": ("buy", Decimal("0.5"), Decimal("50010"), Decimal("25.005")),
            "sim-coinbase": ("sell", Decimal("0.5"), Decimal("50300"), Decimal("25.15")),
        }
        held = {(i.venue, i.asset): i.quantity for i in VenueInventory.objects.filter(book="paper")}
        assert held[("sim-kraken", "BTC-USD")] == Decimal("0.5")
        assert held[("sim-kraken", "USD")] == Decimal("100000") - Decimal("25005") - Decimal("25.005")
        assert held[("sim-coinbase", "BTC-USD")] == Decimal("0.5")
        assert held[("sim-coinbase", "USD")] == Decimal("25150") - Decimal("25.15")

        # The scan after the intent ended settles its arb_pnl against the spread that emitted it.
        t4 = t3 + timedelta(seconds=2)
        collect(t4)
        scan_tenant(as_of=t4, bots=[bot])
        run_scan_batch(as_of=t4, tenant_ids=[tenant_a.id])  # settles (and finds the scan already done)
        pnl = ArbPnl.objects.get()
        assert (pnl.intent_id, pnl.spread_id, pnl.book, pnl.intent_status) == (intent.id, best.id, "paper", "FILLED")
        assert (pnl.bought_quantity, pnl.sold_quantity, pnl.matched_quantity, pnl.unmatched_quantity) == (
            Decimal("0.5"),
            Decimal("0.5"),
            Decimal("0.5"),
            Decimal("0"),
        )
        assert (pnl.fees, pnl.realized_edge) == (Decimal("50.155"), Decimal("94.845"))
        assert pnl.expected_edge == best.net_edge
        assert pnl.edge_shortfall_bps == pnl.expected_edge_bps - pnl.realized_edge_bps < 0  # no slippage happened


def test_a_stale_venue_is_never_priced_and_the_scan_records_data_stale_with_its_age(venues, tenant_a, owner_a):
    collect(T1 - timedelta(seconds=9), only=("kraken",))  # kraken's last quote is ten seconds old at T1
    collect(T1, only=("coinbase", "binanceus"))
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1}, binanceus={"USD": 100_000})
        scan_tenant(as_of=T1, bots=[bot])
        trace = trace_of(bot, T1)
        assert (trace.kind, trace.reason_code, trace.details["age_ms"]) == ("no_trade", "DATA_STALE", 10000)
        [missing] = trace.details["missing_quotes"]
        assert (missing["venue"], missing["reason"], missing["age_ms"]) == ("kraken", "DATA_STALE", 10000)
        # Only the fresh pair is priced (and is below the threshold): nothing with Kraken, nothing emitted.
        assert list(ArbSpread.objects.values_list("buy_venue", "sell_venue", "why_not")) == [
            ("binanceus", "coinbase", "below_threshold")
        ]
        assert not TradeIntent.objects.exists()

        # Kraken answers again: the same scanner acts on the pair it could not price.
        t2 = T1 + timedelta(seconds=2)
        collect(t2)
        scan_tenant(as_of=t2, bots=[bot])
        assert trace_of(bot, t2).kind == "decision"
        assert [leg[0] for leg in legs_of(TradeIntent.objects.get())] == ["sim-kraken", "sim-coinbase"]


def test_a_killed_scanner_emits_nothing_and_records_which_kill(venues, tenant_a, owner_a):
    collect(T1)
    bot = scanner_bot(tenant_a, owner_a)
    other = scanner_bot(tenant_a, owner_a, name="arb-2")
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        bot_services.bot_kill(bot_id=bot.id, actor=owner_a, reason="operator stop")
        scan_tenant(as_of=T1, bots=[Bot.objects.get(pk=bot.id)])
        trace = trace_of(bot, T1)
        assert (trace.reason_code, trace.details["level"], trace.details["kill_reason"]) == (
            "KILLED",
            "bot",
            "operator stop",
        )
        assert not TradeIntent.objects.exists() and not ArbSpread.objects.exists()

        bot_services.tenant_kill(actor=owner_a, reason="tenant stop")
        scan_tenant(as_of=T1, bots=[other])
        assert (trace_of(other, T1).reason_code, trace_of(other, T1).details["level"]) == ("KILLED", "tenant")
        assert not TradeIntent.objects.exists()


def test_scanner_bots_tick_through_the_scan_batch_never_through_the_bar_tick(venues, tenant_a, owner_a):
    collect(T1)
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        runner = bot_services.runner_start(bot_id=bot.id, actor=owner_a)
        assert instruments_to_tick(timeframe=bot.timeframe) == {}
    totals = run_scan_batch(as_of=T1, tenant_ids=[tenant_a.id], sync_oms=True)
    assert (totals.bots, totals.intents_created) == (1, 1)
    assert run_scan_batch(as_of=T1, tenant_ids=[tenant_a.id], sync_oms=True).skipped_already_scanned == 1
    with tenancy.tenant_context(tenant_a.id):
        assert TradeIntent.objects.get().status == "WORKING"  # handed to the OMS, sent to the sim twins
        assert Runner.objects.get(pk=runner.pk).last_tick_at is not None


def test_a_leg_rejected_at_send_applies_the_intents_failure_policy(venues, tenant_a, owner_a):
    collect(T1)
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        scan_tenant(as_of=T1, bots=[bot])
        intent = TradeIntent.objects.get()
        # Between the scan and the send the BTC at Coinbase went elsewhere: its sim twin refuses the sell leg, as
        # the venue would (insufficient funds), after the buy leg was placed.
        fund(owner_a, coinbase={"BTC-USD": -1})
        process_pending_intents()
        intent.refresh_from_db()
        assert intent.status == "FAILED"
        assert intent.status_detail["failed_leg"] == 1 and intent.status_detail["policy"] == "FLATTEN"
        assert intent.status_detail["error_code"] == "VENUE_REJECTED"
        assert [a["action"] for a in intent.status_detail["actions"]] == ["cancelled"]
        assert set(Order.objects.values_list("venue", "status")) == {
            ("sim-kraken", "CANCELLED"),
            ("sim-coinbase", "REJECTED"),
        }
        run_scan_batch(as_of=T1 + timedelta(seconds=2), tenant_ids=[tenant_a.id])
        pnl = ArbPnl.objects.get()
        assert (pnl.intent_status, pnl.fills, pnl.matched_quantity, pnl.realized_edge) == ("FAILED", 0, 0, 0)


def test_a_replay_over_recorded_quotes_emits_the_live_scanners_intents(venues, tenant_a, owner_a, tenant_b, owner_b):
    """Live scans of a paper bot in tenant A and a replay of an identical bot in tenant B (same funding) over the
    same recorded quotes: the same intents, leg for leg and window for window."""
    times = [T1 + timedelta(seconds=2 * i) for i in range(4)]
    books = [(50300.0, 1.25), (50300.0, 1.25), (50400.0, 0.2), (50400.0, 0.2)]
    for at, (bid, size) in zip(times, books):
        venues["coinbase"].set_book("BTC/USD", bid=bid, bid_size=size, ask=bid + 10, ask_size=2.0)
        collect(at)
    params = {"window_seconds": 4}
    live = scanner_bot(tenant_a, owner_a, **params)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        for at in times:
            scan_tenant(as_of=at, bots=[live])
            process_pending_intents()
        live_intents = [(legs_of(i), i.bar_ts) for i in TradeIntent.objects.order_by("id")]
    replayed = scanner_bot(tenant_b, owner_b, **params)
    with tenancy.tenant_context(tenant_b.id):
        fund(owner_b, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        totals = replay_scans(bot=replayed, start=times[0], end=times[-1], run_ref=7, step_seconds=2)
        replay_intents = [(legs_of(i), i.bar_ts) for i in TradeIntent.objects.order_by("id")]
        assert all(i.source == "replay" for i in TradeIntent.objects.all())
        assert TickTrace.objects.filter(context="replay", run_ref=7).count() == 4
    assert len(live_intents) >= 2 and totals.intents_created == len(live_intents)
    assert replay_intents == live_intents


def test_a_replay_runner_of_a_scanner_bot_scans_its_range_on_recorded_quotes(venues, tenant_a, owner_a):
    from execution.arbitrage.replay import replay_runner_scans

    times = [T1 + timedelta(seconds=2 * i) for i in range(3)]
    for at in times:
        collect(at)
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        runner = bot_services.runner_start(
            bot_id=bot.id, actor=owner_a, mode=Runner.Mode.REPLAY, replay_start=times[0], replay_end=times[-1]
        )
        totals = replay_runner_scans(runner_id=runner.id)
        assert (totals["bots"], totals["intents_created"]) == (3, 1)
        traces = TickTrace.objects.filter(bot_id=bot.id, context="replay", run_ref=runner.id).order_by("bar_ts")
        assert [t.reason_code for t in traces] == [None, "COOLDOWN", "COOLDOWN"]
        intent = TradeIntent.objects.get()
        assert intent.source == "replay" and intent.idempotency_key.startswith(f"replay:{runner.id}:arb:")
        assert {leg.venue for leg in intent.legs.all()} == {"sim-kraken", "sim-coinbase"}  # never a live venue
        assert Fill.objects.count() == 2  # filled on the recorded quotes of the next scan


def test_a_live_scanner_sends_both_legs_through_ccxt_and_a_venue_refusal_applies_the_failure_policy(
    venues, tenant_a, owner_a, httpserver, settings
):
    """LIVE: the legs go to the real venues through ccxt (Coinbase's buy, Kraken's sell); Kraken refuses the sell
    ("EOrder:Insufficient funds", its documented error), so the buy already working at Coinbase is cancelled there
    and the intent FAILED naming the leg, the code and the policy."""
    from bots.models import Stage
    from controlplane.books import Book
    from tests.integrations.crypto_venues import btc_usd
    from tests.status_fixtures import make_system_ok

    btc_usd("kraken", "coinbase")
    venues["coinbase"].set_book("BTC/USD", bid=50000.0, bid_size=1.0, ask=50010.0, ask_size=1.0)
    venues["kraken"].set_book("BTC/USD", bid=50300.0, bid_size=1.0, ask=50310.0, ask_size=1.0)
    collect(T1)
    # Coinbase's key permissions (its documented answer for a trade-only key), asked by its verify.
    httpserver.expect_request("/api/v3/brokerage/key_permissions", method="GET").respond_with_json(
        {
            "can_view": True,
            "can_trade": True,
            "can_transfer": False,
            "portfolio_uuid": "p-1",
            "portfolio_type": "DEFAULT",
        }
    )
    make_system_ok(
        tenant=tenant_a,
        owner=owner_a,
        httpserver=httpserver,
        settings=settings,
        verify=("kraken", "coinbase", "binanceus"),
    )
    bot = scanner_bot(tenant_a, owner_a, stage=Stage.LIVE)
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=bot.pk).update(autonomy_tier=Bot.AutonomyTier.T3)
        bot.refresh_from_db()
        # What the venues hold for the tenant (its live book): BTC at Kraken, dollars at Coinbase.
        VenueInventory.objects.create(book=Book.LIVE, venue="kraken", asset="BTC-USD", quantity=Decimal("1"))
        VenueInventory.objects.create(book=Book.LIVE, venue="coinbase", asset="USD", quantity=Decimal("100000"))
        scan_tenant(as_of=T1, bots=[bot])
        intent = TradeIntent.objects.get()
        assert [leg[:3] for leg in legs_of(intent)] == [
            ("coinbase", "buy", Decimal("0.5")),
            ("kraken", "sell", Decimal("0.5")),
        ]
        venues["kraken"].refuse_orders = "EOrder:Insufficient funds"
        process_pending_intents()
        intent.refresh_from_db()
        orders = {o.venue: o for o in Order.objects.all()}
    [buy_sent] = venues["coinbase"].sent
    assert buy_sent["side"] == "BUY" and buy_sent["product_id"] == "BTC-USD"
    assert [body["type"] for body in venues["kraken"].sent] == ["sell"]
    assert (intent.status, intent.status_detail["failed_leg"], intent.status_detail["policy"]) == (
        "FAILED",
        1,
        "FLATTEN",
    )
    assert intent.status_detail["error_code"] == "ORDER_REJECTED"
    assert "Insufficient funds" in intent.status_detail["message"]
    assert [a["action"] for a in intent.status_detail["actions"]] == ["cancelled"]
    assert (orders["coinbase"].status, orders["kraken"].status) == ("CANCELLED", "FAILED")
    assert venues["coinbase"].orders[orders["coinbase"].venue_order_id]["status"] == "canceled"


def test_beats_scan_task_scans_every_running_scanner_on_the_scan_grid(venues, tenant_a, owner_a, settings):
    from django.utils import timezone

    from execution.arbitrage.scanner import scan_as_of
    from execution.tasks import dispatch_scans

    # Received a second before the current grid point, so every later scan sees it: dated a second before *now*,
    # a quote collected in the second half of a 2 s grid cell was newer than the cell's scan and did not exist for
    # it (DATA_UNAVAILABLE, the flake). The age limit is not this test's subject: a loaded machine may be slow.
    settings.ARB_QUOTE_MAX_AGE_MS = 60_000
    collect(scan_as_of(timezone.now()))
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        bot_services.runner_start(bot_id=bot.id, actor=owner_a)
    before = timezone.now()
    result = dispatch_scans()
    assert (result["bots"], result["intents_created"], result["errors"]) == (1, 1, 0)
    with tenancy.tenant_context(tenant_a.id):
        trace = TickTrace.objects.get(bot_id=bot.id)
        assert trace.kind == "decision" and scan_as_of(before) <= trace.bar_ts <= timezone.now()
        assert trace.bar_ts == scan_as_of(trace.bar_ts)  # on the grid: a re-delivered task finds it
