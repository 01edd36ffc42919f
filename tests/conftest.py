"""Test database as the real thing: created and migrated by the owner role, used by the runtime role.

pytest-django would create the test database through the "default" alias, which is the runtime role (it may
not create databases, and must not own the tables, or RLS would not bind it). So the owner alias creates and
migrates it, and the default alias is then pointed at it.
"""

from __future__ import annotations

import pytest
from django.db import connections
from rest_framework.test import APIClient

from controlplane import tenancy
from controlplane.models import Membership, Tenant
from tests.factories import TenantFactory, UserFactory


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_modify_db_settings, django_db_blocker):
    """``django_db_modify_db_settings`` names the test database per pytest-xdist worker (``..._gw0``), so that
    workers running side by side never share one."""
    from django.conf import settings

    with django_db_blocker.unblock():
        owner = connections["owner"]
        original_name = owner.settings_dict["NAME"]
        test_name = owner.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        default = connections["default"]
        default.close()
        default.settings_dict["NAME"] = test_name
        settings.DATABASES["default"]["NAME"] = test_name
    yield
    with django_db_blocker.unblock():
        for conn in connections.all():
            conn.close()
        owner.creation.destroy_test_db(original_name, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def plain_static_storage():
    """Admin pages in tests need no collectstatic manifest (production serves hashed files via WhiteNoise)."""
    from django.conf import settings
    from django.test import override_settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Real commits, for tests where another process (a Celery worker, a thread) must see the rows.

    It needs the test database itself (``django_db_setup``): without it a file run alone wrote to DATABASE_URL's
    own database, which has no tables.

    The runtime role may not TRUNCATE, so the owner connection empties the tables afterwards.
    """
    with django_db_blocker.unblock():
        _forget_oms_run_requests()
        yield
        _forget_oms_run_requests()
        owner = connections["owner"]
        with owner.cursor() as cursor:
            cursor.execute(
                "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('django_migrations', 'django_content_type', 'auth_permission')"
            )
            tables = cursor.fetchone()[0]
            cursor.execute("ALTER TABLE controlplane_auditevent DISABLE TRIGGER USER")
            cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            cursor.execute("ALTER TABLE controlplane_auditevent ENABLE TRIGGER USER")
        for conn in connections.all():
            conn.close()


def _forget_oms_run_requests() -> None:
    """Committed transactions run their on-commit hooks, and a tick's or a submission's asks for an OMS run by
    setting a flag in the broker's Redis for ``OMS_RUN_REQUEST_TTL_SECONDS`` (``execution.orders.oms_runs``). Tenant
    ids restart after the truncate, so a flag left by one test would make the next test's tenant look as if its
    run were already queued, and no run would be sent for it."""
    import redis
    from django.conf import settings

    from execution.orders.oms_runs import request_flag

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        flags = list(client.scan_iter(match=request_flag("*")))
        if flags:
            client.delete(*flags)
    except redis.RedisError:  # no broker, no flag to forget
        pass
    finally:
        client.close()


@pytest.fixture
def json_log_lines():
    """The JSON lines our log formatter writes, from a handler on the root logger for this test."""
    import io
    import json
    import logging

    from controlplane.logging import json_formatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    logging.getLogger().removeHandler(handler)


# Personas: an owner, an operator and a viewer of tenant A, and an owner of tenant B.


@pytest.fixture
def tenant_a(db):
    return TenantFactory(slug="tenant-a")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(slug="tenant-b")


def _member(tenant: Tenant, role: str, username: str):
    user = UserFactory(username=username)
    with tenancy.tenant_context(tenant.id):
        Membership.objects.create(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def owner_a(tenant_a):
    return _member(tenant_a, Membership.Role.OWNER, "owner-a")


@pytest.fixture
def operator_a(tenant_a):
    return _member(tenant_a, Membership.Role.OPERATOR, "operator-a")


@pytest.fixture
def viewer_a(tenant_a):
    return _member(tenant_a, Membership.Role.VIEWER, "viewer-a")


@pytest.fixture
def owner_b(tenant_b):
    return _member(tenant_b, Membership.Role.OWNER, "owner-b")


def token_for(user) -> str:
    """A fresh API token's value for ``user`` (stored as a digest, like every token)."""
    from controlplane.models import ApiToken

    return ApiToken.objects.create(user=user, expiry=None, name="test")[1]


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def api_owner_a(owner_a):
    return client_for(owner_a)


@pytest.fixture
def api_operator_a(operator_a):
    return client_for(operator_a)


@pytest.fixture
def api_viewer_a(viewer_a):
    return client_for(viewer_a)


@pytest.fixture
def api_owner_b(owner_b):
    return client_for(owner_b)


# Second factor (controlplane/twofactor.py, controlplane/stepup.py): a real TOTP device and its current code.


def enrol_totp(user):
    """The user's confirmed authenticator (created on first use), as enrolment leaves it."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)


def totp_code(device) -> str:
    """The code the authenticator app would show now, computed from the device's key (django_otp.oath.TOTP). A code
    is accepted once: when this time step's was used already, the next step's (within the device's tolerance)."""
    from django_otp.oath import TOTP

    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if device.last_t >= totp.t():
        assert device.last_t < totp.t() + device.tolerance, "this step's codes are used up: reuse the session"
        # The step after the last one used, as the device counts it: t() adds the device's drift (a login that
        # crossed a step boundary leaves drift -1), so the time is taken back by it.
        totp.time = (device.last_t + 1 - device.drift) * device.step + device.t0
    return f"{totp.token():0{device.digits}d}"


def present_second_factor(client, user=None):
    """Every request of ``client`` carries a current TOTP code of ``user`` (default: the owner of the client's API
    token) in X-OTP-Token: its first action that needs a step-up verifies it and records the step-up for the
    client's token, which then needs no new code for STEP_UP_MAX_AGE_SECONDS."""
    if user is None:
        from knox.auth import TokenAuthentication

        token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
        user, _ = TokenAuthentication().authenticate_credentials(token.encode())
    client.defaults["HTTP_X_OTP_TOKEN"] = totp_code(enrol_totp(user))
    return client


def console_client(user):
    """A console session of ``user`` (made staff), as the login leaves it: through the real login form with a current
    code when the user has an authenticator (the console lets in only a session that verified it), else forced."""
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        client.force_login(user)
        return client
    data = {"username": user.get_username(), "password": "correct horse battery staple", "otp_token": totp_code(device)}
    response = client.post("/admin/login/", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    return client
