"""Browser tests: Debian's chromium driven by pytest-playwright against one live server of the test database.

One live server (Django's LiveServerThread, threaded, on the test database) and one browser serve the whole
session; each test gets a fresh page and commits its own rows (``committed_db``), since the server thread reads
through its own connection. Screenshots go to ``.artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import override_settings

# Playwright's sync API runs an event loop in the test's thread; the ORM calls a test makes there are still
# plain synchronous calls, so Django's guard against async contexts does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's chromium, never a downloaded one; without the background-networking flags chromium keeps
    trying hosts this machine's closed network refuses."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 1000}}


@pytest.fixture(scope="session")
def console_server(django_db_setup, django_db_blocker):
    """The one live server of the session, serving the test database with the collected static files."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    with django_db_blocker.unblock():
        with override_settings(ALLOWED_HOSTS=["*"], DEBUG=False):
            server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
            server.daemon = True
            server.start()
            server.is_ready.wait()
            if server.error:
                raise server.error
            try:
                yield f"http://127.0.0.1:{server.port}"
            finally:
                server.terminate()


@pytest.fixture
def shot():
    """``shot(page, "name")`` saves a full-page screenshot for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def forget_status():
    from controlplane import status

    status.forget_cached_status()
    yield
    status.forget_cached_status()


@pytest.fixture
def console_people(committed_db, forget_status):
    """A tenant with an owner, an operator and a viewer, all staff (they log into the console), committed."""
    from controlplane import tenancy
    from controlplane.models import Membership
    from tests.factories import TenantFactory, UserFactory

    tenant = TenantFactory(slug="acme")
    people = {}
    for role in (Membership.Role.OWNER, Membership.Role.OPERATOR, Membership.Role.VIEWER):
        user = UserFactory(username=f"{role}-acme", is_staff=True)
        with tenancy.tenant_context(tenant.id):
            Membership.objects.create(tenant=tenant, user=user, role=role)
        people[role] = user
    return {"tenant": tenant, **people}


def login(page, base_url: str, username: str, next_path: str = "/admin/", code: str | None = None) -> None:
    """Through the login form; ``code`` goes into "Authenticator code or backup code" (users with a device)."""
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    if code is not None:
        page.fill("input[name=otp_token]", code)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}*")
