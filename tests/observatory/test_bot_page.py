"""The bot page (issue 14) through Django's test client, after real ticks: the header, the why-not verdict and
window, the decision table with its links, the autonomy checklist, money per book and the audit trail; what it
says while the system is not OK or a panel's read fails; and a bounded number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from oversight.autonomy import autonomy_compute
from bots import services as bot_services
from controlplane import status as status_module
from controlplane import tenancy
from execution.models import Instrument, TradeIntent
from execution.tick.batches import run_tick_batch
from tests.execution.helpers import store_bars
from tests.status_fixtures import make_system_ok
from traces.models import TickTrace
from tests.conftest import console_client, enrol_totp, totp_code

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)
PARAMS = {"fast": 2, "slow": 4, "size": 1}


@pytest.fixture(autouse=True)
def fresh_status_cache(settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    status_module.forget_cached_status()
    yield
    status_module.forget_cached_status()


def console(user) -> Client:
    return console_client(user)


def ticked_bot(tenant, owner, *, name="trend"):
    """A bot on BTC-USD ticked for real over the last hour and a half: it warms up, trades once, holds, and then
    the bars run out (DATA_STALE); then scored."""
    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=90)
    btc = Instrument.objects.get(symbol="BTC-USD")
    store_bars(btc, t0, 12)
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner, name=name, strategy="ma_crossover", parameters=PARAMS, instruments=["BTC-USD"]
        )
        bot_services.runner_start(bot_id=bot.id, actor=owner)
    for minute in [*range(5, 13), *range(40, 44)]:
        run_tick_batch(instrument=btc, timeframe="1m", as_of=t0 + minute * MINUTE, sync_oms=True)
    with tenancy.tenant_context(tenant.id):
        autonomy_compute(bot_id=bot.id, trigger="ON_DEMAND", actor=owner)
    return bot


def page_of(client, bot, query="") -> str:
    response = client.get(f"/admin/bots/bot/{bot.id}/change/{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_the_bot_page_after_real_ticks_explains_what_the_bot_did_and_why(tenant_a, owner_a, viewer_a):
    bot = ticked_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        traces = list(TickTrace.objects.filter(bot_id=bot.id, context="tick").order_by("bar_ts"))
        intent = TradeIntent.objects.get(bot=bot)
    decided = [t for t in traces if t.kind == "decision"]
    stale = sum(1 for t in traces if t.reason_code == "DATA_STALE")
    assert decided and stale

    page = page_of(console(viewer_a), bot)
    # Header: a table of parameters, not JSON; flags and the runner in words.
    assert '<tr class="parameter" data-name="fast">' in page and '"fast": 2' not in page
    assert 'id="bot-stage"' in page and "tier T" in page
    assert "not killed" in page and "no mismatch" in page
    assert re.search(r'id="bot-runner" data-status="RUNNING"', page)
    assert 'id="bot-heartbeat">never<' in page or re.search(r'id="bot-heartbeat">\d{4}-', page)
    # Why not trading: the latest verdict in words, since when, what would change it.
    assert 'data-verdict="DATA_STALE"' in page
    assert "The latest bar is older than the timeframe allows" in page and "What would change it" in page
    # The window (the last 24 h by default) counts each reason as the traces do, and draws the strip.
    counts = {}
    for t in traces:
        if t.reason_code:
            counts[t.reason_code] = counts.get(t.reason_code, 0) + 1
    for reason, n in counts.items():
        assert f'data-reason="{reason}" data-count="{n}"' in page, reason
    assert 'id="timeline-strip"' in page and 'class="cp-strip-part" data-reason="decision"' in page
    # ... and in time order: 96 slices of 15 minutes, the ticks only in the last 90 minutes, the trade before the
    # staleness.
    slices = re.findall(r'class="cp-timeline-slice" data-what="([^"]+)"', page)
    assert len(slices) == 96 and set(slices[:80]) == {"no tick"}
    ticked = [what for what in slices if what != "no tick"]
    assert "decision" in ticked and ticked[-1] == "DATA_STALE"
    assert ticked.index("decision") < ticked.index("DATA_STALE")
    # Why it traded: the decision, its signal values and target, linked to the intent, its order and the trace.
    assert page.count('<tr class="decision">') == len(decided)
    assert "fast_ma=" in page and "slow_ma=" in page
    assert f'href="/admin/execution/tradeintent/{intent.id}/change/"' in page
    assert "/admin/execution/order/" in page and "/admin/execution/fill/" in page
    # The ticks stopped at minute 43 of the last 90: the verdict is what the bot last said, and is marked stale.
    assert 'id="verdict-stale"' in page
    assert f"/admin/observatory/trace/?trace_id={decided[0].trace_id}" in page
    # Autonomy: each gate is a checklist row with its value, threshold and fix.
    assert page.count('<tr class="gate"') == 13
    assert 'data-gate="paper_trades" data-passed="false"' in page and "Keep paper trading" in page
    # Money: the paper book holds the position, marked and flagged; live is apart and empty.
    assert 'id="book-paper"' in page and '<tr class="position" data-instrument="BTC-USD">' in page
    assert page.count('<tr class="fill">') >= 1
    assert 'id="equity-chart-paper"' in page and 'id="drawdown-chart-paper"' in page
    assert 'id="book-live"' in page and 'id="equity-chart-live"' not in page
    # Audit trail, newest first, with actors and trace ids.
    actions = re.findall(r'<tr class="audit-event" data-action="([^"]+)"', page)
    assert actions[-1] == "bot.create" and "runner.start" in actions[:-1]
    assert owner_a.username in page


def test_a_window_from_to_narrows_the_timeline(tenant_a, owner_a):
    bot = ticked_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        last = TickTrace.objects.filter(bot_id=bot.id).order_by("bar_ts").last()
    start, end = last.bar_ts, last.bar_ts + MINUTE  # the last tick alone: stale, after the trade
    page = page_of(console(owner_a), bot, f"?from={start.isoformat()}&to={end.isoformat()}")
    rows = re.findall(r'<tr class="window-reason" data-reason="([A-Z_]+)" data-count="(\d+)"', page)
    assert rows == [("DATA_STALE", "1")]
    assert page.count('<tr class="decision">') == 0

    bad = page_of(console(owner_a), bot, "?from=yesterday")
    assert 'id="window-error"' in bad and "last 24 hours" in bad


def test_a_bot_that_never_ticked_says_so_and_shows_no_zero_as_a_fact(tenant_a, owner_a):
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a, name="idle", strategy="ma_crossover", parameters=PARAMS, instruments=["BTC-USD"]
        )
    page = page_of(console(owner_a), bot)
    assert 'data-verdict="never"' in page and 'id="timeline-empty"' in page
    assert 'data-status="none"' in page and "never started" in page
    assert 'id="autonomy-none"' in page
    assert page.count("book-empty") == 2  # nothing recorded: said in words, not as $0.00
    # A fresh tenant is BLOCKED (no market-data key): the page says what it cannot know.
    assert 'id="bot-degraded"' in page and 'data-status="BLOCKED"' in page
    assert "may not have run" in page


def test_a_system_that_is_ok_shows_no_degraded_banner(tenant_a, owner_a, httpserver, settings):
    make_system_ok(tenant=tenant_a, owner=owner_a, httpserver=httpserver, settings=settings)
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a, name="calm", strategy="ma_crossover", parameters=PARAMS, instruments=["BTC-USD"]
        )
    assert 'id="bot-degraded"' not in page_of(console(owner_a), bot)


def test_a_panel_whose_read_fails_says_so_and_the_others_render(tenant_a, owner_a, settings):
    bot = ticked_bot(tenant_a, owner_a)
    settings.TRACE_RETENTION_DAYS = "not a number"  # why_not_window's retention read now raises
    page = page_of(console(owner_a), bot)
    assert re.search(r'id="why-not".*?class="panel-error"', page, re.S)
    assert "whether and why the bot trades is not known" in page
    assert 'data-gate="paper_trades"' in page and 'id="book-paper"' in page  # the other panels still render


def test_the_bot_page_renders_with_a_bounded_number_of_queries(tenant_a, owner_a, django_assert_max_num_queries):
    bot = ticked_bot(tenant_a, owner_a)
    client = console(owner_a)
    page_of(client, bot)  # warm the status cache and the session
    # 51 today (a dozen are the panels' savepoints); every list on the page is read with a LIMIT, none per row. One
    # more for the supervisor's open breaches, two for the second factor on every console page (does the tenant
    # require it, does the user have a device).
    with django_assert_max_num_queries(58):
        page_of(client, bot)


def action(client, bot, name, **data):
    return client.post(f"/admin/observatory/bots/{bot.id}/{name}/", data, follow=True)


def test_an_operator_kills_a_bot_from_its_page_with_a_confirmed_reason(tenant_a, owner_a, operator_a):
    bot = ticked_bot(tenant_a, owner_a)
    client = console(operator_a)
    page = page_of(client, bot)
    assert 'id="bot-actions"' in page and 'data-action="kill"' in page
    assert 'data-action="unkill"' not in page  # only owners unkill

    unconfirmed = action(client, bot, "kill", reason="test")
    assert "not confirmed; nothing was done" in unconfirmed.content.decode()
    no_reason = action(client, bot, "kill", confirm="yes", reason=" ")
    assert "Kill refused: VALIDATION_ERROR" in no_reason.content.decode()
    bot.refresh_from_db()
    assert not bot.killed

    done = action(client, bot, "kill", confirm="yes", reason="drawdown looks wrong")
    assert done.redirect_chain[-1][0] == f"/admin/bots/bot/{bot.id}/change/"
    text = done.content.decode()
    assert "Kill: killed; open orders are being cancelled (trace " in text
    bot.refresh_from_db()
    assert bot.killed and bot.kill_reason == "drawdown looks wrong"
    assert 'id="bot-killed"' in text and '<tr class="audit-event" data-action="bot.kill">' in text
    assert action(client, bot, "unkill", confirm="yes", reason="fine").status_code == 403


def test_a_refused_action_shows_its_error_code_and_fix_and_a_viewer_cannot_act(tenant_a, owner_a, viewer_a):
    bot = ticked_bot(tenant_a, owner_a)
    client = console(owner_a)
    refused = action(client, bot, "start", confirm="yes").content.decode()  # a runner is already running
    assert "Start a runner refused: RUNNER_ALREADY_ACTIVE" in refused and "Fix:" in refused
    stopped = action(client, bot, "stop", confirm="yes", reason="maintenance").content.decode()
    assert "Stop the runner: runner" in stopped and 'data-status="STOPPED"' in stopped
    viewer = console(viewer_a)
    assert 'id="bot-actions"' not in page_of(viewer, bot)
    assert action(viewer, bot, "kill", confirm="yes", reason="x").status_code == 403
    bot.refresh_from_db()
    assert not bot.killed


def test_an_operator_sets_the_trading_state_from_the_page_and_a_bad_state_is_named(tenant_a, owner_a, operator_a):
    from execution.risk.selectors import trading_state_of

    bot = ticked_bot(tenant_a, owner_a)
    client = console(operator_a)
    assert 'data-action="trading_state"' in page_of(client, bot)
    bad = action(client, bot, "trading_state", confirm="yes", reason="test", state="SIDEWAYS").content.decode()
    assert "Set the trading state refused: VALIDATION_ERROR" in bad
    done = action(client, bot, "trading_state", confirm="yes", reason="news at 14:30", state="REDUCE_ONLY")
    assert "Set the trading state: REDUCE_ONLY (trace " in done.content.decode()
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        state = trading_state_of(bot_id=bot.id)
    assert (state["state"], state["reason"]) == ("REDUCE_ONLY", "news at 14:30")


def test_an_owner_unkills_from_the_page_only_with_an_authenticator_code(tenant_a, owner_a):
    bot = ticked_bot(tenant_a, owner_a)
    device = enrol_totp(owner_a)
    client = console(owner_a)
    action(client, bot, "kill", confirm="yes", reason="drill")
    page = page_of(client, bot)
    assert 'data-otp="unkill"' in page and "Authenticator code" in page
    decision = {"confirm": "yes", "reason": "drill over", "positions_decision": "keep_positions"}
    missing = action(client, bot, "unkill", **decision).content.decode()
    assert "Unkill refused: STEP_UP_REQUIRED" in missing and "X-OTP-Token" in missing
    wrong = action(client, bot, "unkill", otp_token="000000", **decision).content.decode()
    assert "Unkill refused: STEP_UP_REQUIRED" in wrong and "not valid" in wrong
    bot.refresh_from_db()
    assert bot.killed  # nothing changed
    device.throttle_reset()  # django-otp's back-off after a wrong code (1 s): the test does not wait
    done = action(client, bot, "unkill", otp_token=totp_code(device), **decision).content.decode()
    assert "Unkill: unkilled (trace " in done
    bot.refresh_from_db()
    assert not bot.killed


def test_promotion_to_live_from_the_page_asks_for_the_code_and_other_stages_do_not(tenant_a, owner_a):
    from bots.models import Bot, Stage

    bot = ticked_bot(tenant_a, owner_a)
    enrol_totp(owner_a)
    client = console(owner_a)
    assert 'data-otp="promote"' not in page_of(client, bot)  # LAB -> BACKTESTED needs no second factor
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=bot.id).update(stage=Stage.PAPER)
    assert 'data-otp="promote"' in page_of(client, bot)
    refused = action(client, bot, "promote", confirm="yes").content.decode()
    assert "Promote refused: STEP_UP_REQUIRED" in refused and "to LIVE" in refused
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.get(pk=bot.id).stage == Stage.PAPER
