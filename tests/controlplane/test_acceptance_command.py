"""``manage.py acceptance`` against a real portal: pytest-django's ``live_server`` (real HTTP, a server thread on
the test database), a tenant, an operator and their API token made the way tests/conftest.py makes them.

The server thread reads through its own connection, so rows are committed (``committed_db``, which stands in for
pytest-django's ``transactional_db``: the runtime role may not flush tables, the owner empties them afterwards).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from bots.models import Bot, Runner
from controlplane import acceptance, tenancy
from controlplane.logging import json_formatter
from controlplane.models import Membership
from integrations import services as integration_services
from integrations.providers.databento import fake as databento_fake
from tests.conftest import token_for
from tests.factories import TenantFactory, UserFactory
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_supabase"


@pytest.fixture
def transactional_db(committed_db):
    """What ``live_server`` asks for: committed rows the server thread can read."""
    yield


@pytest.fixture
def portal(live_server):
    """An operator of a fresh tenant with one bot whose data-source key is missing."""
    tenant = TenantFactory(slug="acceptance")
    user = UserFactory(username="acceptance-operator")
    owner = UserFactory(username="acceptance-owner")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OPERATOR)
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
        bot = Bot.objects.create(
            name="es-paper",
            strategy="ma_crossover",
            instruments=["ES"],
            venue="tradovate",
            data_source="databento",
            stage="PAPER",
        )
    return {"url": live_server.url, "token": token_for(user), "tenant": tenant, "owner": owner, "bot": bot}


@pytest.fixture
def portal_log(tmp_path):
    """The portal's JSON log as a file, the way an operator would point --log-file at it."""
    path = tmp_path / "portal.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(json_formatter())
    logging.getLogger().addHandler(handler)
    yield path
    logging.getLogger().removeHandler(handler)
    handler.close()


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("acceptance", *args, stdout=out)
        status = 0
    except SystemExit as exc:
        status = exc.code
    return status, out.getvalue()


def test_checks_pass_on_a_keyless_portal_and_a_remaining_edge_call_fails(portal, portal_log):
    status, out = run(
        "--base-url",
        portal["url"],
        "--token",
        portal["token"],
        "--client-src",
        str(FIXTURES / "client" / "src"),
        "--log-file",
        str(portal_log),
    )

    assert status == 1
    assert f"{FIXTURES}/client/src/pages/Bots.tsx:5: invoke promote-bot" in out
    assert "FAIL: 6 edge invocation(s) remain in the client sources." in out
    assert "  promote-bot: 410 EDGE_CALL_BLOCKED -> Call POST /api/bots/{id}/promote instead." in out
    assert "PASS: all 37 names answered 410 and were logged with their trace id." in out
    assert "status=BLOCKED autonomy_allowed=False" in out
    assert "[blocking] INTEGRATION_KEY_MISSING integrations.databento: Set DATABENTO_API_KEY" in out
    assert "PASS: BLOCKED with 2 blocker(s): keys are missing." in out
    assert f"  bot {portal['bot'].id} has a provider with missing keys" in out
    assert "PASS: 409 INTEGRATION_KEY_MISSING with trace id acceptance-start-" in out
    assert "NOT VERIFIED: no provider has its keys configured" in out
    assert "  FAIL         1. no edge invocation in the client sources" in out
    assert "  PASS         4. POST /api/runners/start" in out
    with tenancy.tenant_context(portal["tenant"].id):
        assert not Runner.objects.exists()


def test_a_migrated_client_passes_check_one_and_without_a_log_file_check_two_is_not_verified(portal):
    status, out = run(
        "--base-url",
        portal["url"],
        "--token",
        portal["token"],
        "--client-src",
        str(FIXTURES / "client-migrated" / "src"),
    )

    assert status == 3  # nothing failed, but checks 2 and 5 could not be verified
    assert "PASS: no supabase.functions.invoke, functions.supabase.co or /functions/v1/ call." in out
    assert "note: Supabase client or auth use at" in out
    assert "NOT VERIFIED: all 37 names answered 410 with their replacement and trace id" in out
    assert "FAIL" not in out


def test_a_log_without_the_blocked_lines_fails_check_two(portal, tmp_path):
    empty_log = tmp_path / "other.log"
    empty_log.write_text('{"event": "something else", "trace_id": "x"}\n')

    check = acceptance.check_edge_calls_blocked(acceptance.Portal(portal["url"], portal["token"]), str(empty_log))

    assert check.verdict == acceptance.FAIL
    assert "  0 of 37 calls have their [EDGE_CALL_BLOCKED] line with the trace id" in check.lines


def test_a_bot_whose_runner_would_start_is_a_failure_and_its_runner_is_stopped(portal, httpserver, settings):
    settings.INTEGRATION_BASE_URLS = {"databento": httpserver.url_for("").rstrip("/")}
    databento_fake.serve_verify(httpserver)
    with tenancy.tenant_context(portal["tenant"].id):
        with transaction.atomic():
            integration_services.credentials_set(
                provider="databento", values={"DATABENTO_API_KEY": "db-abcdefghijkl"}, actor=portal["owner"]
            )
        with transaction.atomic():
            integration_services.verify_provider(provider="databento", actor_name="test")

    check = acceptance.check_safe_start(acceptance.Portal(portal["url"], portal["token"]), portal["bot"].id)

    assert check.verdict == acceptance.FAIL
    assert "the runner started (its keys are not missing)" in check.lines[-1]
    with tenancy.tenant_context(portal["tenant"].id):
        assert list(Runner.objects.values_list("status", flat=True)) == [Runner.Status.STOPPED]


def test_proof_of_use_sees_the_verify_event_and_fails_when_no_tick_comes(portal, httpserver, settings):
    settings.INTEGRATION_BASE_URLS = {"databento": httpserver.url_for("").rstrip("/")}
    databento_fake.serve_verify(httpserver)
    with tenancy.tenant_context(portal["tenant"].id), transaction.atomic():
        integration_services.credentials_set(
            provider="databento", values={"DATABENTO_API_KEY": "db-abcdefghijkl"}, actor=portal["owner"]
        )
    client = acceptance.Portal(portal["url"], portal["token"])

    without_bot = acceptance.check_proof_of_use(client, provider=None, tick_bot=None, tick_timeout=1)
    # No beat runs in the test: the started runner never ticks, and the check says so and stops it.
    with_bot = acceptance.check_proof_of_use(client, provider="databento", tick_bot=portal["bot"].id, tick_timeout=2)

    assert without_bot.verdict == acceptance.NOT_VERIFIED
    assert any(line.startswith("  verify event ") and "databento verify ok" in line for line in without_bot.lines)
    assert "a tick is run by beat, not by an HTTP call: give --tick-bot ID" in without_bot.lines[-1]
    assert with_bot.verdict == acceptance.FAIL
    assert f"bot {portal['bot'].id} did not tick within 2s" in with_bot.lines[-1]
    with tenancy.tenant_context(portal["tenant"].id):
        runner = Runner.objects.get()
    assert runner.status == Runner.Status.STOPPED and runner.stop_reason == "acceptance check 5: one tick"


def test_no_token_or_a_bad_token_is_a_clear_error(portal, monkeypatch):
    monkeypatch.delenv("CONTROLPLANE_TOKEN", raising=False)
    with pytest.raises(CommandError, match="No API token"):
        call_command("acceptance", "--base-url", portal["url"], stdout=io.StringIO())
    with pytest.raises(CommandError, match="answered 401"):
        call_command("acceptance", "--base-url", portal["url"], "--token", "0" * 64, stdout=io.StringIO())
