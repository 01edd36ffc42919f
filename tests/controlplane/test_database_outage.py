"""With the database unreachable or a connection lost: 503 in the error shape, status BLOCKED, reads retried once.

The unreachable database is real: the default connection is pointed at a local port nothing listens on, so every
connect is refused as it is while Postgres is stopped. A lost connection is a real ``pg_terminate_backend``.
"""

import json
import socket
import time

import psycopg
import pytest
from django.db import connections
from django.test import Client

from controlplane import tenancy
from controlplane.models import Membership
from tests.conftest import client_for
from tests.factories import TenantFactory, UserFactory
from tests.processes import database_url

ERROR_KEYS = {"error_code", "message", "suggested_fix", "trace_id"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when this returns: connects to it are refused


@pytest.fixture
def token_user(django_db_setup, committed_db):
    from tests.conftest import token_for

    tenant = TenantFactory(slug="outage")
    user = UserFactory(username="outage-owner")
    with tenancy.tenant_context(tenant.id):
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return token_for(user)


@pytest.fixture
def unreachable_database(token_user):
    default = connections["default"]
    saved = {key: default.settings_dict[key] for key in ("HOST", "PORT")}
    default.close()
    default.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    yield token_user
    default.close()
    default.settings_dict.update(saved)


def _assert_database_unavailable(response):
    assert response.status_code == 503, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS | {"details"}
    assert body["error_code"] == "SERVICE_UNAVAILABLE"
    assert body["details"] == {"component": "database"}
    assert body["trace_id"] == response["X-Trace-Id"]


def test_health_says_the_database_is_unreachable_in_the_error_shape_within_the_connect_timeout(unreachable_database):
    from django.conf import settings

    started = time.monotonic()
    response = Client().get("/api/health")
    assert time.monotonic() - started < settings.DATABASES["default"]["OPTIONS"]["connect_timeout"]
    _assert_database_unavailable(response)
    assert "database" in response.json()["message"].lower()


@pytest.mark.parametrize("authorized", [False, True])
def test_status_answers_blocked_by_the_database_alone_with_or_without_credentials(unreachable_database, authorized):
    headers = {"HTTP_AUTHORIZATION": f"Token {unreachable_database}"} if authorized else {}
    response = Client().get("/api/system/status", **headers)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "BLOCKED" and body["autonomy_allowed"] is False
    assert [(b["component"], b["code"], b["severity"]) for b in body["blockers"]] == [
        ("database", "SERVICE_UNAVAILABLE", "blocking")
    ]
    assert body["bots"] is None and body["scheduler"] is None and body["integrations"] is None
    assert body["trace_id"] == response["X-Trace-Id"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/bots"),
        ("get", "/api/me"),
        ("post", "/api/intents"),
        ("post", "/api/tenant/kill"),
        ("get", "/api/no-such-endpoint"),
    ],
)
def test_every_other_endpoint_answers_503_in_the_error_shape(unreachable_database, method, path):
    client = Client(HTTP_AUTHORIZATION=f"Token {unreachable_database}")
    response = getattr(client, method)(path, data={} if method == "post" else None, content_type="application/json")
    _assert_database_unavailable(response)


def test_an_admin_page_answers_503_not_500(unreachable_database):
    response = Client().get("/admin/")
    assert response.status_code == 503
    assert b"database" in response.content


def _kill_backend_of_default_connection() -> None:
    """Terminate the server process behind this test's pooled connection, as an operator or a failover would.
    The killer connects as the same runtime role, which may signal its own role's backends."""
    pid = connections["default"].connection.info.backend_pid
    with psycopg.connect(database_url("default"), autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)


def test_a_read_that_lost_its_connection_runs_once_more_on_a_fresh_one(token_user):
    """The kill lands after Django's once-per-request health check has passed (the test client, like a kill
    mid-request, does not check the connection again), so the read meets the dead connection."""
    from django.contrib.auth import get_user_model

    client = client_for(get_user_model().objects.get(username="outage-owner"))
    assert client.get("/api/bots").status_code == 200
    _kill_backend_of_default_connection()
    response = client.get("/api/bots")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


def test_a_write_that_lost_its_connection_is_refused_with_503_and_not_run_again(token_user):
    from django.contrib.auth import get_user_model

    from bots.models import TenantKillSwitch
    from controlplane.models import Tenant

    client = client_for(get_user_model().objects.get(username="outage-owner"))
    assert client.get("/api/me").status_code == 200
    _kill_backend_of_default_connection()
    _assert_database_unavailable(client.post("/api/tenant/kill", {"reason": "outage drill"}, format="json"))
    assert client.get("/api/me").status_code == 200  # the next request starts on a fresh connection
    with tenancy.tenant_context(Tenant.objects.get(slug="outage").id):
        assert not TenantKillSwitch.objects.filter(killed=True).exists()


def test_a_connection_lost_at_commit_answers_503_saying_the_outcome_is_unknown(token_user):
    """The view has run and only COMMIT is left when the connection dies: "nothing was changed" would be a guess."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from controlplane.middleware import TenantTransactionMiddleware

    def view_whose_connection_dies_before_commit(request):
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        _kill_backend_of_default_connection()
        return HttpResponse(status=201)

    middleware = TenantTransactionMiddleware(view_whose_connection_dies_before_commit)
    response = middleware(RequestFactory().post("/api/tenant/kill"))
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["error_code"] == "SERVICE_UNAVAILABLE"
    assert "may or may not" in body["message"]
    assert connections["default"].is_usable()  # Django dropped the dead connection and opened a fresh one
