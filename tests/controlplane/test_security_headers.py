"""Security headers: a CSP on every answer that the console's pages live within, HSTS and Secure cookies once the
site says it is HTTPS-only (DJANGO_SECURE_COOKIES)."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client, override_settings

from controlplane.security import policy_header
from tests.factories import UserFactory
from tests.processes import BASE_DIR

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
CONSOLE_PAGES = [
    "/admin/",
    "/admin/observatory/connections/",
    "/admin/observatory/trace/",
    "/admin/controlplane/auditevent/",
    "/admin/controlplane/membership/",
    "/admin/bots/bot/",
    "/admin/auth/user/",
    "/admin/password_change/",
]
RESOURCE = re.compile(r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)=\"([^\"]*)\"", re.I)


@pytest.fixture
def console(owner_a):
    owner_a.is_staff = owner_a.is_superuser = True
    owner_a.save(update_fields=["is_staff", "is_superuser"])
    client = Client()
    client.force_login(owner_a)
    return client


def _same_origin(url: str) -> bool:
    return url.startswith(("/", "#", "data:")) and not url.startswith("//")


def test_console_pages_render_under_the_policy_and_load_nothing_from_elsewhere(console):
    expected = policy_header(settings.CONTENT_SECURITY_POLICY)
    for path in CONSOLE_PAGES:
        response = console.get(path)
        assert response.status_code == 200, path
        assert response["Content-Security-Policy"] == expected, path
        page = response.content.decode()
        resources = RESOURCE.findall(page)
        assert any(url.endswith(".js") for url in resources), path  # the pattern does find the page's scripts
        assert [url for url in resources if not _same_origin(url)] == [], path
    # Why scripts may be evaluated and inline: the console's Alpine.js attributes and the tenant switcher.
    dashboard = console.get("/admin/").content.decode()
    assert "x-data" in dashboard and 'onchange="' in dashboard
    assert "'unsafe-eval'" in expected and "'unsafe-inline'" in expected


def test_the_login_page_the_api_and_its_docs_carry_the_policy_too(client):
    for path in ("/admin/login/", "/api/health", "/api/me", "/api/docs"):
        response = client.get(path)
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], path
        assert "connect-src 'self'" in response["Content-Security-Policy"], path
    docs = client.get("/api/docs").content.decode()
    assert [url for url in RESOURCE.findall(docs) if not _same_origin(url)] == []


def _settings_under(**env) -> dict:
    """The settings a fresh process reads from this environment."""
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps("
        "[s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "controlplane.settings", **env},
    ).stdout
    hsts, session, csrf = json.loads(out.strip().splitlines()[-1])
    return {"hsts": hsts, "session_secure": session, "csrf_secure": csrf}


def test_secure_cookies_turn_on_hsts_and_secure_cookies():
    assert _settings_under(DJANGO_SECURE_COOKIES="true") == {
        "hsts": 31536000,
        "session_secure": True,
        "csrf_secure": True,
    }
    assert _settings_under(DJANGO_SECURE_COOKIES="false") == {"hsts": 0, "session_secure": False, "csrf_secure": False}


@override_settings(SECURE_HSTS_SECONDS=31536000, SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_over_https_answers_carry_hsts_and_the_login_sets_secure_cookies():
    UserFactory(username="ops", is_staff=True, is_superuser=True)
    client = Client()
    assert client.get("/admin/login/", secure=True)["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/admin/login/")  # never over plain HTTP
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": PASSWORD}, secure=True)
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"] is True
    assert response.cookies["csrftoken"]["secure"] is True
