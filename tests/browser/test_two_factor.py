"""Enrolment in a browser: a member of a tenant that requires 2FA is sent to the enrolment page, scans (here: reads)
the QR code's secret, confirms it with the app's code, and then reaches the console."""

from controlplane import tenancy, twofactor
from tests.browser.conftest import login
from tests.conftest import totp_code


def test_a_member_of_a_tenant_requiring_2fa_enrols_then_reaches_the_console(page, console_server, console_people, shot):
    owner, tenant = console_people["owner"], console_people["tenant"]
    with tenancy.tenant_context(tenant.id):
        twofactor.tenant_security_set(tenant_id=tenant.id, require_two_factor=True, actor=owner)
    page.goto(f"{console_server}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "operator-acme")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{console_server}/admin/two-factor/")
    assert page.locator("#must-enrol").is_visible()
    page.goto(f"{console_server}/admin/observatory/connections/")
    page.wait_for_url(f"{console_server}/admin/two-factor/")  # nothing else is reachable yet

    page.click("#totp-start button")
    page.wait_for_selector("#totp-qr")
    assert page.locator("#totp-qr").evaluate("img => img.complete && img.naturalWidth > 0")
    device = twofactor.pending_totp_device(console_people["operator"])
    assert page.locator("#totp-secret").inner_text() == twofactor.totp_secret(device)
    shot(page, "two-factor-enrol-qr", full_page=False)
    page.fill("#totp-confirm input[name=code]", totp_code(device))
    page.click("#totp-confirm button")
    page.wait_for_selector("text=Authenticator app enrolled")
    assert page.locator("#must-enrol").count() == 0
    shot(page, "two-factor-enrolled", full_page=False)
    page.goto(f"{console_server}/admin/")
    assert page.url == f"{console_server}/admin/"

    # From now on the login asks for the app's code.
    page.context.clear_cookies()
    login(page, console_server, "operator-acme", "/admin/", code=totp_code(device))
    assert page.url == f"{console_server}/admin/"
