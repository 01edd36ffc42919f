"""The bot page in a browser after real ticks (issue 14): the timeline strip, the decision table, the autonomy
checklist and the paper book's equity chart drawn with data points."""

from datetime import timedelta

from django.utils import timezone

from oversight.autonomy import autonomy_compute
from bots import services as bot_services
from controlplane import tenancy
from execution.tick.batches import run_tick_batch
from tests.browser.conftest import SCREENSHOTS, login
from tests.conftest import enrol_totp, totp_code
from tests.execution.helpers import store_bars
from tests.factories import InstrumentFactory

MINUTE = timedelta(minutes=1)


def test_the_bot_page_after_real_ticks_shows_why_and_draws_its_equity(
    page, console_server, console_people, shot, settings
):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    owner, tenant = console_people["owner"], console_people["tenant"]
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=90)
    store_bars(btc, t0, 12)
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name="trend",
            strategy="ma_crossover",
            parameters={"fast": 2, "slow": 4, "size": 1},
            instruments=["BTC-USD"],
        )
        bot_services.runner_start(bot_id=bot.id, actor=owner)
    for minute in [*range(5, 13), *range(40, 44)]:  # warm-up, a trade, holding, then the bars run out
        run_tick_batch(instrument=btc, timeframe="1m", as_of=t0 + minute * MINUTE, sync_oms=True)
    with tenancy.tenant_context(tenant.id):
        autonomy_compute(bot_id=bot.id, trigger="ON_DEMAND", actor=owner)

    login(page, console_server, "viewer-acme", f"/admin/bots/bot/{bot.id}/change/")
    assert page.locator("#verdict [data-verdict=DATA_STALE]").count() == 1
    assert page.locator("#timeline-strip .cp-strip-part").count() >= 2
    assert page.locator("#timeline-strip [data-reason=decision]").count() == 1
    assert page.locator("#timeline .cp-timeline-slice[data-what=decision]").count() >= 1
    assert page.locator("tr.decision").count() >= 1
    assert page.locator("tr.decision a.intent-link").count() >= 1
    assert page.locator("tr.gate").count() == 13
    assert page.locator("tr.gate[data-passed=false]").count() >= 1
    assert page.locator("#bot-degraded").count() == 1  # a fresh tenant is BLOCKED: said above the panels
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('equity-chart-paper'))")
    points = page.evaluate("""() => ['equity-chart-paper', 'drawdown-chart-paper'].map(
        id => Chart.getChart(document.getElementById(id)).data.datasets[0].data.length)""")
    assert points[0] == points[1] >= 2, points
    shot(page, "bot-page")
    page.locator("#why-not").screenshot(path=str(SCREENSHOTS / "bot-page-why-not.png"))
    shot(page, "bot-page-top", full_page=False)


def test_an_operator_kills_a_bot_from_its_page_after_confirming_with_a_reason(
    page, console_server, console_people, shot
):
    owner, tenant = console_people["owner"], console_people["tenant"]
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name="to-kill",
            strategy="ma_crossover",
            parameters={"fast": 2, "slow": 4, "size": 1},
            instruments=["BTC-USD"],
        )
    login(page, console_server, "operator-acme", f"/admin/bots/bot/{bot.id}/change/")
    page.click("#bot-actions button[data-action=kill]")
    dialog = page.locator("dialog#action-kill")
    assert dialog.is_visible()
    dialog.locator("textarea[name=reason]").fill("positions look wrong")
    shot(page, "bot-page-kill-confirm", full_page=False)
    dialog.locator("button[data-confirm=kill]").click()
    page.wait_for_selector("#bot-killed")
    assert "Kill: killed" in page.content()
    assert page.locator("tr.audit-event[data-action='bot.kill']").count() == 1
    with tenancy.tenant_context(tenant.id):
        bot.refresh_from_db()
    assert bot.killed and bot.kill_reason == "positions look wrong"
    shot(page, "bot-page-killed", full_page=False)


def test_an_owner_unkills_a_bot_by_typing_the_authenticator_code_in_the_confirmation(
    page, console_server, console_people, shot
):
    owner, tenant = console_people["owner"], console_people["tenant"]
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name="to-unkill",
            strategy="ma_crossover",
            parameters={"fast": 2, "slow": 4, "size": 1},
            instruments=["BTC-USD"],
        )
        bot_services.bot_kill(bot_id=bot.id, actor=owner, reason="drill")
    device = enrol_totp(owner)
    page.goto(f"{console_server}/admin/login/")
    assert page.locator("label[for=id_otp_token]").inner_text().strip().startswith("Authenticator code or backup code")
    shot(page, "console-login-with-code", full_page=False)
    login(page, console_server, "owner-acme", f"/admin/bots/bot/{bot.id}/change/", code=totp_code(device))

    page.click("#bot-actions button[data-action=unkill]")
    dialog = page.locator("dialog#action-unkill")
    dialog.locator("textarea[name=reason]").fill("drill over")
    dialog.locator("select[name=positions_decision]").select_option("keep_positions")
    dialog.locator("input[name=otp_token]").fill("000000")
    dialog.locator("button[data-confirm=unkill]").click()
    page.wait_for_selector("text=Unkill refused: STEP_UP_REQUIRED")
    assert "not valid" in page.content() and page.locator("#bot-killed").count() == 1
    shot(page, "bot-page-unkill-wrong-code", full_page=False)
    with tenancy.tenant_context(tenant.id):
        bot.refresh_from_db()
    assert bot.killed  # a wrong code changed nothing

    device.throttle_reset()  # django-otp's back-off after the wrong code (1 s): the test does not wait
    page.click("#bot-actions button[data-action=unkill]")
    dialog.locator("textarea[name=reason]").fill("drill over")
    dialog.locator("select[name=positions_decision]").select_option("keep_positions")
    dialog.locator("input[name=otp_token]").fill(totp_code(device))
    shot(page, "bot-page-unkill-confirm-with-code", full_page=False)
    dialog.locator("button[data-confirm=unkill]").click()
    page.wait_for_selector("text=Unkill: unkilled")
    with tenancy.tenant_context(tenant.id):
        bot.refresh_from_db()
    assert not bot.killed
    shot(page, "bot-page-unkilled", full_page=False)
