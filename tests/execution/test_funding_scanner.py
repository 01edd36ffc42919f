"""The funding/basis scanner as a bot (issue 18), on quotes, funding and basis collected through the real ccxt code
from local servers speaking Coinbase's order book and Hyperliquid's ``metaAndAssetCtxs`` / ``l2Book`` shapes
(integrations/providers/<venue>/fake.py): a two-leg entry when funding pays both legs' fees, paper fills on the sim
twins (the perpetual's against its recorded swap book), the position opened from the fills, funding booked at the
venue's rate, the closing intent once funding turns, basis_pnl, stale funding data, a killed scanner, and a replay
over the recorded quotes that emits the live scanner's intents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bots import services as bot_services
from bots.models import Bot, Runner, Stage
from controlplane import tenancy
from execution.funding_models import BasisPnl, FundingPayment, FundingPosition
from execution.arbitrage.funding_services import book_funding_payments
from execution.arbitrage.replay import replay_scans
from execution.arbitrage.scanner import SCAN_INSTRUMENT, scan_tenant
from execution.arbitrage.services import paper_inventory_fund
from execution.marketdata.models import BasisQuote, FundingRate, SpotQuote
from execution.marketdata.quotes import QuoteCollector
from execution.models import ArbSpread, Instrument, TradeIntent
from execution.orders.oms import process_pending_intents
from traces.models import TickTrace
from tests.integrations.crypto_venues import BTC_USD, FakeCoinbase, FakeHyperliquid, set_keys
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

pytestmark = pytest.mark.django_db

VENUES = ("coinbase", "hyperliquid")
FEES = {"coinbase": 0.0005, "hyperliquid": 0.00035}  # a round trip of both legs: 2 x 8.5 = 17 bps
# Scan grid points of today (quote partitions are by day and today's always exists), two seconds apart.
T1 = datetime.now(UTC).replace(hour=0, minute=0, second=10, microsecond=0)
STEP = timedelta(seconds=2)
SECOND = timedelta(seconds=1)
PARAMS = {"entry_threshold_bps": 5, "holding_hours": 24, "max_notional": 5000}


@pytest.fixture
def venues(httpserver, settings, tenant_a, owner_a):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    settings.INTEGRATION_BASE_URLS = {v: httpserver.url_for("").rstrip("/") for v in VENUES}
    settings.ARB_TAKER_FEES = FEES
    settings.ARB_SCAN_INTERVAL_SECONDS = 2.0
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    with tenancy.tenant_context(tenant_a.id):
        for venue in VENUES:
            set_keys(venue, owner_a)
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {v: BTC_USD[v] for v in VENUES}
    instrument.save(update_fields=["venue_symbols"])
    fakes = {"coinbase": FakeCoinbase(httpserver), "hyperliquid": FakeHyperliquid(httpserver)}
    fakes["coinbase"].set_book("BTC/USD", bid=50000.0, bid_size=1.0, ask=50001.0, ask_size=1.0)
    fakes["hyperliquid"].set_book("BTC/USDC:USDC", bid=50010.0, bid_size=2.0, ask=50011.0, ask_size=2.0)
    # 2 bps an hour: 48 bps over a day against 17 bps of fees.
    fakes["hyperliquid"].contexts["BTC"] = {"funding": "0.0002", "markPx": "50010.5", "oraclePx": "50000.5"}
    return fakes


def collect(at: datetime, *, drop: tuple[str, ...] = ()) -> None:
    """One collector round through ccxt, its quote and basis rows dated a second before ``at`` (the test moves the
    clock instead of waiting); the rows of the venues in ``drop`` are discarded (a venue that did not answer)."""
    newest_quote = SpotQuote.objects.order_by("-id").values_list("id", flat=True).first() or 0
    newest_basis = BasisQuote.objects.order_by("-id").values_list("id", flat=True).first() or 0
    QuoteCollector(hostname="collector-1").round()
    quotes = SpotQuote.objects.filter(id__gt=newest_quote)
    bases = BasisQuote.objects.filter(id__gt=newest_basis)
    quotes.filter(venue__in=drop).delete()
    bases.filter(venue__in=drop).delete()
    quotes.update(received_at=at - timedelta(seconds=1))
    bases.update(received_at=at - timedelta(seconds=1))


def funding_bot(tenant, owner, *, name="funding", stage=Stage.PAPER, collateral=100_000, **params) -> Bot:
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="funding_arbitrage",
            parameters={**PARAMS, **params},
            instruments=["BTC-USD"],
        )
        Bot.objects.filter(pk=bot.pk).update(stage=stage)
        bot.refresh_from_db()
        paper_inventory_fund(venue="sim-coinbase", asset="USD", quantity=100_000, actor=owner)
        if collateral:
            paper_inventory_fund(venue="sim-hyperliquid", asset="USDC", quantity=collateral, actor=owner)
    return bot


def trace_of(bot, at, context="tick") -> TickTrace:
    return TickTrace.objects.get(bot_id=bot.id, bar_ts=at, instrument=SCAN_INSTRUMENT, context=context)


def legs_of(intent: TradeIntent) -> list[tuple]:
    return [(leg.venue, leg.side, leg.quantity, leg.limit_price) for leg in intent.legs.order_by("leg_index")]


def scan_at(bot, at, **collect_kwargs):
    collect(at, **collect_kwargs)
    totals = scan_tenant(as_of=at, bots=[bot])
    process_pending_intents()
    return totals


def test_funding_that_pays_opens_a_hedged_pair_which_fills_earns_funding_and_closes_when_funding_turns(
    venues, tenant_a, owner_a
):
    bot = funding_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        assert scan_at(bot, T1).intents_created == 1

        entry = TradeIntent.objects.get()
        quantity = Decimal("0.09999800")  # 5,000 / 50,001, cut to 1e-8
        assert legs_of(entry) == [
            ("sim-coinbase", "buy", quantity, Decimal("50001")),
            ("sim-hyperliquid", "sell", quantity, Decimal("50010")),
        ]
        assert entry.failure_policy == "FLATTEN" and entry.idempotency_key.startswith(f"arb:{bot.id}:BTC-USD:")
        trace = trace_of(bot, T1)
        assert (trace.kind, trace.intent_id) == ("decision", entry.id)
        # 48 bps of funding + 1.8 of basis - 0.2 of exit spread - 17 of fees.
        assert trace.signal["net_edge_bps"] == pytest.approx(32.6)
        assert trace.signal["funding_rate"] == pytest.approx(0.0002)
        assert ArbSpread.objects.count() == 0  # funding candidates are not spot spreads
        position = FundingPosition.objects.get()
        assert (position.status, position.direction, position.quantity) == ("OPENING", "long_spot_short_perp", quantity)

        # The next scan fills both legs on the sim twins against the recorded books (the perpetual's swap book).
        scan_at(bot, T1 + STEP)
        position.refresh_from_db()
        assert (position.status, position.entry_spot_price, position.entry_perp_price) == (
            "OPEN",
            Decimal("50001"),
            Decimal("50010"),
        )
        assert position.entry_fees == (
            quantity * 50001 * Decimal("0.0005") + quantity * 50010 * Decimal("0.00035")
        ).quantize(Decimal("0.00000001"))
        assert trace_of(bot, T1 + STEP).reason_code == "NO_SIGNAL"  # held: nothing new to open
        assert TradeIntent.objects.count() == 1

        # The venue's funding time passes while the pair is open: booked at its rate and the mark then.
        rate = FundingRate.objects.get(venue="hyperliquid")
        BasisQuote.objects.filter(venue="hyperliquid").update(received_at=rate.funding_at - timedelta(seconds=1))
        booked = book_funding_payments(as_of=rate.funding_at + timedelta(minutes=1))
        payment = FundingPayment.objects.get()
        assert booked.booked == 1 and payment.amount == (Decimal("0.0002") * quantity * Decimal("50010.5")).quantize(
            Decimal("0.000000001")
        )

        # Funding turns negative: the pair no longer pays, the exit goes out, then fills.
        venues["hyperliquid"].contexts["BTC"]["funding"] = "-0.00005"
        assert scan_at(bot, T1 + 2 * STEP).intents_created == 1
        exit_intent = TradeIntent.objects.exclude(pk=entry.pk).get()
        assert legs_of(exit_intent) == [
            ("sim-coinbase", "sell", quantity, Decimal("50000")),
            ("sim-hyperliquid", "buy", quantity, Decimal("50011")),
        ]
        position.refresh_from_db()
        assert (position.status, position.close_intent_id, position.close_reason) == (
            "CLOSING",
            exit_intent.id,
            "funding_below_exit",
        )
        scan_at(bot, T1 + 3 * STEP)
        position.refresh_from_db()
        assert (position.status, position.exit_spot_price, position.exit_perp_price) == (
            "CLOSED",
            Decimal("50000"),
            Decimal("50011"),
        )
        assert trace_of(bot, T1 + 3 * STEP).reason_code == "NO_SIGNAL"  # negative funding: no long-spot entry

        row = BasisPnl.objects.get(pk=position.pk)
        assert (row.entry_basis, row.exit_basis) == (Decimal("9"), Decimal("11"))
        assert row.basis_pnl == (Decimal("-2") * quantity).quantize(Decimal("1e-9"))
        assert row.funding_received == payment.amount and row.fees == position.entry_fees + position.exit_fees
        assert row.total == row.basis_pnl + row.funding_received - row.fees


def test_stale_funding_data_is_data_stale_with_its_age_and_nothing_is_sent(venues, tenant_a, owner_a):
    bot = funding_bot(tenant_a, owner_a)
    collect(T1)
    later = T1 + timedelta(seconds=10)
    with tenancy.tenant_context(tenant_a.id):
        totals = scan_at(bot, later, drop=("hyperliquid",))  # the perpetual venue did not answer this round

        assert totals.intents_created == 0 and TradeIntent.objects.count() == 0
        trace = trace_of(bot, later)
        assert (trace.kind, trace.reason_code) == ("no_trade", "DATA_STALE")
        assert trace.details["age_ms"] == 11000
        (missing,) = trace.details["missing_quotes"]
        assert (missing["venue"], missing["reason"]) == ("hyperliquid", "DATA_STALE")
        assert "perpetual book" in missing["detail"]


def test_a_fresh_perpetual_book_with_stale_funding_and_mark_is_data_stale_too(venues, tenant_a, owner_a):
    bot = funding_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        collect(T1)
        BasisQuote.objects.update(received_at=T1 - timedelta(seconds=8))  # the funding poll lags the books

        scan_tenant(as_of=T1, bots=[bot])

        assert TradeIntent.objects.count() == 0
        trace = trace_of(bot, T1)
        assert (trace.reason_code, trace.details["age_ms"]) == ("DATA_STALE", 8000)
        (missing,) = trace.details["missing_quotes"]
        assert missing["detail"] == "latest hyperliquid funding/basis is 8000 ms old (limit 5000 ms)"


def test_a_perpetual_leg_refused_for_collateral_unwinds_the_entry_and_the_position_never_opens(
    venues, tenant_a, owner_a
):
    bot = funding_bot(tenant_a, owner_a, collateral=0)  # nothing at sim-hyperliquid to margin the short
    with tenancy.tenant_context(tenant_a.id):
        scan_at(bot, T1)
        entry = TradeIntent.objects.get()
        perp_order = entry.orders.get(leg__leg_index=1)
        assert (perp_order.status, perp_order.reason) == (
            "REJECTED",
            "insufficient funds: sim-hyperliquid holds 0 USDC, sell needs 5000.899980000000000000",
        )
        scan_at(bot, T1 + STEP)

        entry.refresh_from_db()
        assert entry.status == "FAILED" and entry.failure_policy == "FLATTEN"
        assert (
            entry.orders.get(leg__leg_index=0, purpose="LEG").status == "CANCELLED"
        )  # never filled: nothing to flatten
        position = FundingPosition.objects.get()
        assert (position.status, position.close_reason, position.opened_at) == ("CLOSED", "entry_failed", None)
        assert FundingPayment.objects.count() == 0


def test_a_killed_funding_scanner_emits_nothing_and_records_why(venues, tenant_a, owner_a):
    bot = funding_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_kill(bot_id=bot.id, actor=owner_a, reason="operator stop")
        scan_at(bot, T1)
        assert TradeIntent.objects.count() == 0 and FundingPosition.objects.count() == 0
        assert trace_of(bot, T1).reason_code == "KILLED"


def test_a_replay_over_the_recorded_quotes_emits_the_live_scanners_intents(venues, tenant_a, owner_a):
    bot = funding_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        scan_at(bot, T1)
        scan_at(bot, T1 + STEP)
        venues["hyperliquid"].contexts["BTC"]["funding"] = "-0.00005"
        scan_at(bot, T1 + 2 * STEP)
        scan_at(bot, T1 + 3 * STEP)
        live = [legs_of(i) for i in TradeIntent.objects.filter(source="tick").order_by("id")]
        assert len(live) == 2
        # A funding time while both timelines' pairs are open (entry filled at T1+2s, exit at T1+6s).
        FundingRate.objects.create(
            venue="hyperliquid",
            instrument=Instrument.objects.get(symbol="BTC-USD"),
            market="BTC/USDC:USDC",
            rate=Decimal("0.0002"),
            interval_hours=1,
            funding_at=T1 + 4 * SECOND,
            received_at=T1,
        )
        book_funding_payments(as_of=T1 + 3 * STEP, bot=bot)
        live_payment = FundingPayment.objects.get()
        # The mark is the basis quote collected for the scan at T1+4s (received a second before it).
        assert (live_payment.mark_at, live_payment.amount) == (
            T1 + 3 * SECOND,
            (Decimal("0.0002") * Decimal("0.09999800") * Decimal("50010.5")).quantize(Decimal("1e-9")),
        )

        runner = Runner.objects.create(
            bot=bot, status=Runner.Status.STOPPED, started_by="test", started_at=T1, mode=Runner.Mode.REPLAY
        )
        totals = replay_scans(bot=bot, start=T1, end=T1 + 3 * STEP, run_ref=runner.id, step_seconds=2)

        replayed = [legs_of(TradeIntent.objects.get(pk=pk)) for pk in totals.intent_ids]
        assert replayed == live
        assert list(
            FundingPosition.objects.filter(run_ref=runner.id).values_list(
                "status", "entry_spot_price", "exit_spot_price"
            )
        ) == [("CLOSED", Decimal("50001"), Decimal("50000"))]
        assert FundingPosition.objects.filter(run_ref=None).get().status == "CLOSED"  # the live one, untouched
        replay_payment = FundingPayment.objects.get(position__run_ref=runner.id)  # booked by the replay itself
        assert (replay_payment.funding_at, replay_payment.amount) == (live_payment.funding_at, live_payment.amount)


def test_a_funding_replays_evidence_is_its_basis_pnl_counting_closed_positions_and_showing_open_ones(
    venues, tenant_a, owner_a
):
    """The gate's evidence for a funding scanner reads ``basis_pnl``: a position still open at the replay's end is
    unsettled (its realized PnL is unknown, never a zero), a closed one's total is the realized figure."""
    from oversight.scanner_evidence import evidence_problems, quote_replay_evidence

    bot = funding_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        collect(T1)
        collect(T1 + STEP)
        venues["hyperliquid"].contexts["BTC"]["funding"] = "-0.00005"
        collect(T1 + 2 * STEP)
        collect(T1 + 3 * STEP)

        def replay(end):
            runner = Runner.objects.create(
                bot=bot,
                status=Runner.Status.STOPPED,
                started_by="test",
                started_at=T1,
                mode=Runner.Mode.REPLAY,
                replay_start=T1,
                replay_end=end,
            )
            replay_scans(bot=bot, start=T1, end=end, run_ref=runner.id, step_seconds=2)
            return runner

        still_open = replay(T1 + STEP)
        evidence = quote_replay_evidence(bot, still_open)
        assert FundingPosition.objects.get(run_ref=still_open.id).status == "OPEN"
        assert (evidence.pnl_table, evidence.settled, evidence.unsettled, evidence.realized_pnl) == (
            "basis_pnl",
            0,
            1,
            None,
        )
        assert "realized basis_pnl unknown (nothing settled, or a fee was not reported)" in evidence_problems(evidence)

        closed = replay(T1 + 3 * STEP)
        evidence = quote_replay_evidence(bot, closed)
        row = BasisPnl.objects.get(position__run_ref=closed.id)
        assert row.status == "CLOSED" and row.total is not None
        assert (evidence.pnl_table, evidence.settled, evidence.unsettled) == ("basis_pnl", 1, 0)
        assert Decimal(evidence.realized_pnl) == row.total
        assert (evidence.intents, evidence.orders, evidence.fills) == (2, 4, 4)
