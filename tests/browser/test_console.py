"""The console as an operator meets it, in a real browser: log in, read the status, enter a key, verify,
read the proof of use, survive Redis going away, and see only what the role allows."""

from __future__ import annotations

import re

from django.test import override_settings
from playwright.sync_api import expect

from tests.browser.conftest import login

CLOSED_REDIS = "redis://127.0.0.1:1/0"


def test_login_lands_on_the_dashboard(page, console_server, console_people, shot):
    login(page, console_server, "owner-acme")
    expect(page.locator("#system-status")).to_be_visible()
    shot(page, "dashboard")


def test_a_fresh_install_is_blocked_and_lists_each_blocker_with_its_fix(page, console_server, console_people, shot):
    login(page, console_server, "operator-acme")
    status = page.locator("#system-status")
    expect(status).to_have_attribute("data-status", "BLOCKED")
    blocker = page.locator("#blockers tr.blocker[data-component='integrations.market_data']")
    expect(blocker).to_contain_text("No provider for market data")
    expect(blocker.locator(".blocker-fix")).to_contain_text("POLYGON_API_KEY")
    expect(page.locator("#status-trace-id a.trace-link")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    expect(page.locator("#status-banner")).to_have_attribute("data-status", "BLOCKED")
    blocker.get_by_role("link", name="Fix it here").click()
    page.wait_for_url(re.compile(r"/admin/observatory/connections/#category-market_data$"))
    shot(page, "dashboard-blocked")


def test_the_dashboard_panel_refreshes_itself(page, console_server, console_people):
    login(page, console_server, "operator-acme")
    first = page.locator("#observatory-panel").inner_text()
    rendered = re.search(r"Rendered (\d\d:\d\d:\d\d)", first).group(1)
    page.evaluate("window.__noReload = true")
    expect(page.locator("#observatory-panel")).not_to_contain_text(f"Rendered {rendered}", timeout=15_000)
    assert page.evaluate("window.__noReload") is True


def test_an_owner_enters_a_key_that_is_masked_and_never_echoed(page, console_server, console_people, shot):
    secret = "pk-live-abcdefghijklmnop-4321"
    login(page, console_server, "owner-acme", "/admin/observatory/connections/")
    field = page.locator("#provider-polygon input[name=POLYGON_API_KEY]")
    expect(field).to_have_attribute("type", "password")
    field.fill(secret)
    shot(page, "connections-key-typed")
    page.locator("#provider-polygon form.key-entry button[type=submit]:not([name])").click()
    expect(page.locator("#provider-polygon input[name=POLYGON_API_KEY]")).to_have_attribute(
        "placeholder", re.compile("ends in …4321")
    )
    assert secret not in page.content()
    expect(page.locator("#provider-polygon [data-field=configured]")).to_contain_text("yes, from admin")
    expect(page.locator("#provider-polygon [data-field=connected]")).to_contain_text("not verified")


def test_verify_shows_its_result_in_the_card_and_the_popout_lists_its_usage_event(
    page, console_server, console_people, shot
):
    login(page, console_server, "operator-acme", "/admin/observatory/connections/")
    page.evaluate("window.__noReload = true")
    card = page.locator("#provider-redis")
    card.locator("button.verify-button").click()
    result = page.locator("#provider-redis .verify-result")
    expect(result).to_have_attribute("data-status", "ok")
    expect(result).to_contain_text(" ms")
    trace_id = result.locator(".verify-trace-id a").inner_text()
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert page.evaluate("window.__noReload") is True, "the page reloaded"
    expect(page.locator("#provider-redis [data-field=connected]")).to_contain_text("connected")
    expect(page.locator("#provider-redis [data-field=proof-of-use]")).to_contain_text("1 successful")
    card.scroll_into_view_if_needed()
    shot(page, "connections-verified", full_page=False)

    page.locator("#provider-redis button.usage-button").click()
    dialog = page.locator("#usage-dialog")
    expect(dialog).to_be_visible()
    row = dialog.locator("tr.usage-event").first
    expect(row).to_contain_text("ok")
    expect(row.locator("a.trace-link")).to_have_text(trace_id)
    shot(page, "connections-proof-of-use", full_page=False)

    row.locator("a.trace-link").click()
    page.wait_for_url(re.compile(rf"/admin/observatory/trace/\?trace_id={trace_id}$"))
    kinds = page.locator("#trace-timeline tr.trace-row").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert set(kinds) == {"provider call", "verification", "audit event"}
    shot(page, "trace-explorer")


def test_with_redis_unreachable_every_page_has_the_banner_and_the_redis_card_says_unknown(
    page, console_server, console_people, shot
):
    login(page, console_server, "operator-acme")
    with override_settings(REDIS_URL=CLOSED_REDIS):
        from controlplane import status

        status.forget_cached_status()
        for path in (
            "/admin/",
            "/admin/bots/bot/",
            "/admin/controlplane/auditevent/",
            "/admin/integrations/integrationcredential/keys-needed/",
            "/admin/observatory/connections/",
        ):
            page.goto(f"{console_server}{path}")
            banner = page.locator("#status-banner")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("redis")
            expect(banner.locator("a.trace-link")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
        redis_card = page.locator("#provider-redis")
        expect(redis_card).to_have_attribute("data-connected", "false")
        expect(redis_card.locator("[data-field=breaker]")).to_contain_text("unknown")
        expect(redis_card.locator("[data-field=connected]")).not_to_have_text(re.compile(r"^\s*connected\s*$"))
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "connections-redis-down", full_page=False)


def test_a_viewer_sees_no_key_entry_and_no_action(page, console_server, console_people, shot):
    login(page, console_server, "viewer-acme", "/admin/observatory/connections/")
    expect(page.locator("#provider-polygon")).to_be_visible()
    expect(page.locator("form.key-entry")).to_have_count(0)
    expect(page.locator("button.verify-button")).to_have_count(0)
    expect(page.get_by_text("Read only")).to_be_visible()
    shot(page, "connections-viewer", full_page=False)
    page.goto(f"{console_server}/admin/bots/bot/")
    expect(page.locator("select[name=action]")).to_have_count(0)


def test_the_bot_list_draws_a_kill_as_an_alarm_and_a_live_bot_quietly(page, console_server, console_people, shot):
    from bots import services
    from controlplane import tenancy

    owner = console_people["owner"]
    with tenancy.tenant_context(console_people["tenant"].id):
        for name in ("trend-es", "meanrev-nq"):
            services.bot_create(
                actor=owner,
                name=name,
                strategy="ma_crossover",
                parameters={"fast": 5, "slow": 20},
                instruments=["ES"],
                venue="sim",
                data_source="imported",
            )
        killed = services.bot_create(
            actor=owner,
            name="halted-mes",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
        services.bot_kill(bot_id=killed.id, actor=owner, reason="drawdown review")
    login(page, console_server, "operator-acme", "/admin/bots/bot/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#result_list tbody tr", has_text="halted-mes")).to_contain_text("KILLED")
    expect(page.locator("#result_list tbody tr", has_text="trend-es")).not_to_contain_text("KILLED")
    expect(page.get_by_text("3 bots")).to_be_visible()
    shot(page, "bots-list", full_page=False)


def test_the_dashboard_shows_the_supervisor_heartbeat_and_its_latest_actions(
    page, console_server, console_people, shot
):
    from django.utils import timezone

    from bots import services as bot_services
    from bots.models import Bot, Runner
    from controlplane import tenancy
    from oversight.supervisor.sweep import supervisor_sweep

    tenant, owner = console_people["tenant"], console_people["owner"]
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name="erring-bot",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
        Bot.objects.filter(pk=bot.pk).update(stage="PAPER")
        now = timezone.now()
        Runner.objects.create(
            bot=bot,
            status="RUNNING",
            started_by="t",
            started_at=now,
            last_heartbeat_at=now,
            consecutive_errors=4,
            trace_id="t",
        )
    login(page, console_server, "operator-acme")
    panel = page.locator("#supervisor")
    expect(panel.locator("#supervisor-heartbeat")).to_contain_text("stale")  # no run yet
    expect(page.locator("#blockers tr.blocker[data-component='supervisor']")).to_contain_text("Start beat and a worker")
    supervisor_sweep()
    page.reload()
    expect(panel.locator("#supervisor-heartbeat")).to_contain_text("alive")
    action = panel.locator("tr.supervisor-action[data-trigger='tick_errors']")
    expect(action).to_contain_text("erring-bot")
    expect(action).to_contain_text("Halted")
    expect(action).to_contain_text("4 vs 3")
    panel.scroll_into_view_if_needed()
    shot(page, "dashboard-supervisor")
