"""The console's alert history in a real browser: an alert that reached nobody stands out in red."""

from __future__ import annotations

from controlplane import alerting, tenancy
from controlplane.alerts import alert
from tests.browser.conftest import login


def test_alerts_that_reached_nobody_are_red_in_the_history(page, console_server, console_people, shot, settings):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 1
    tenant, owner = console_people["tenant"], console_people["owner"]
    with tenancy.tenant_context(tenant.id, user_id=owner.id):
        alerting.recipient_create(name="on call", channel="sms", address="+15558675310", actor=owner)
        alerting.recipient_create(
            name="desk", channel="email", address="desk@example.com", min_severity="warning", actor=owner
        )
    alert(event="bot.killed", message="circuit breaker killed bot es-trend", tenant_id=tenant.id, bot_id=1)
    alert(event="data.stale", message="ES 1m bars stale for 3 bars", tenant_id=tenant.id, severity="warning")
    alert(event="autonomy.info", message="bot es-trend scored T3", tenant_id=tenant.id, severity="info")
    with tenancy.tenant_context(tenant.id):
        alerting.deliver_due()  # no Twilio keys: the SMS fails for good; the e-mails go out (locmem)

    login(page, console_server, "owner-acme", "/admin/")
    page.locator("nav a[href='/admin/controlplane/alert/']").first.click()  # the sidebar's way in
    page.wait_for_url(f"{console_server}/admin/controlplane/alert/")
    killed = page.locator("tr", has_text="circuit breaker killed bot es-trend")
    assert "1 sent, 1 failed" in killed.inner_text().lower()  # the desk was told, the SMS never left
    assert "1 sent" in page.locator("tr", has_text="bars stale").inner_text().lower()
    assert "nobody: no recipient" in page.locator("tr", has_text="scored T3").inner_text().lower()
    shot(page, "alerts-history")

    page.goto(f"{console_server}/admin/controlplane/alert/?reached=nobody")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "scored T3" in rows.first.inner_text()
