"""Guessing is throttled: failed API tokens per IP (DRF throttle on the failure path), admin passwords per
username and IP (django-axes), each with a clear answer and a way back."""

import uuid

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from controlplane.throttling import FailedAuthenticationThrottle
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def _own_address():
    """A client IP of one test's own, its failure counter removed afterwards (Redis outlives the test)."""
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    yield ip
    cache.delete(FailedAuthenticationThrottle.cache_format % {"scope": "auth_failure", "ident": ip})


address = pytest.fixture(_own_address)
other_address = pytest.fixture(_own_address)


def _token_call(token: str, ip: str):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/me")


def test_invalid_tokens_from_one_address_are_throttled_then_refused_with_retry_after(address, owner_a):
    limit = FailedAuthenticationThrottle().num_requests
    statuses = [_token_call(f"guess-{n}", address).status_code for n in range(limit + 5)]
    assert statuses == [401] * limit + [429] * 5
    response = _token_call("guess-again", address)
    body = response.json()
    assert (body["error_code"], body["trace_id"]) == ("RATE_LIMITED", response["X-Trace-Id"])
    assert body["message"] and body["suggested_fix"]
    assert int(response["Retry-After"]) > 0
    # A right guess from there answers like a wrong one, so the throttle tells the guesser nothing.
    from tests.conftest import token_for

    assert _token_call(token_for(owner_a), address).status_code == 429


def test_the_throttle_is_per_address_and_counts_only_failures(address, other_address, owner_a):
    limit = FailedAuthenticationThrottle().num_requests
    for n in range(limit):
        _token_call(f"guess-{n}", address)
    assert _token_call("one-more", address).status_code == 429
    assert _token_call("first-guess", other_address).status_code == 401
    honest = client_for(owner_a)
    honest.defaults["REMOTE_ADDR"] = other_address
    assert all(honest.get("/api/me").status_code == 200 for _ in range(limit + 5))


def _login(client, password: str, username: str = "ops"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


@pytest.fixture
def staff():
    return UserFactory(username="ops", is_staff=True, is_superuser=True)


def test_wrong_admin_passwords_lock_the_username_and_address_out(settings, staff, client):
    limit = settings.AXES_FAILURE_LIMIT
    answers = [_login(client, f"wrong-{n}").status_code for n in range(limit)]
    assert answers[:-1] == [200] * (limit - 1)  # the login form again, with its error
    assert answers[-1] == 429
    assert _login(client, PASSWORD).status_code == 429  # even the right password, until reset or cool-off
    assert "_auth_user_id" not in client.session
    elsewhere = type(client)(REMOTE_ADDR="192.0.2.44")
    assert _login(elsewhere, PASSWORD).status_code == 302  # the operator is not locked out from everywhere


def test_a_lockout_is_reset_by_the_command_the_readme_names(settings, staff, client):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(client, f"wrong-{n}")
    assert _login(client, PASSWORD).status_code == 429
    call_command("axes_reset_username", "ops")
    assert _login(client, PASSWORD).status_code == 302


def test_a_successful_login_clears_the_count(settings, staff, client):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, f"wrong-{n}")
    assert _login(client, PASSWORD).status_code == 302
    client.logout()
    assert _login(client, "wrong-again").status_code == 200
