"""The console's own pages through Django's test client: what each role sees and may do, and that nothing
reports OK, connected or zero by default."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from controlplane import status as status_module
from controlplane.models import Membership
from integrations.models import IntegrationCredential, IntegrationUsageEvent
from tests.factories import UserFactory
from tests.conftest import console_client, enrol_totp, totp_code

CLOSED_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def fresh_status_cache():
    status_module.forget_cached_status()
    yield
    status_module.forget_cached_status()


def console(user) -> Client:
    return console_client(user)


def test_a_fresh_tenants_dashboard_is_blocked_and_lists_each_blocker_with_its_fix(owner_a):
    page = console(owner_a).get("/admin/").content.decode()
    assert 'id="system-status" data-status="BLOCKED"' in page
    assert 'class="blocker"' in page and "integrations.market_data" in page
    assert "Fix it here" in page and "/admin/observatory/connections/#category-market_data" in page
    assert 'id="status-banner"' in page and "System BLOCKED" in page


def test_the_dashboard_panel_refreshes_on_its_own(owner_a):
    client = console(owner_a)
    assert 'hx-trigger="every 5s"' in client.get("/admin/").content.decode()
    panel = client.get("/admin/observatory/dashboard/panel/")
    assert panel.status_code == 200 and 'id="observatory-panel"' in panel.content.decode()


def test_the_banner_is_on_every_page_and_names_the_status_trace(owner_a):
    client = console(owner_a)
    for url in (
        "/admin/bots/bot/",
        "/admin/controlplane/auditevent/",
        "/admin/observatory/connections/",
        "/admin/integrations/integrationcredential/keys-needed/",
    ):
        page = client.get(url).content.decode()
        assert 'id="status-banner"' in page, url
        assert "/admin/observatory/trace/?trace_id=" in page, url


def status_store_down():
    raise RuntimeError("status store down")


def test_a_status_that_cannot_be_computed_is_unknown_never_ok(owner_a, settings):
    # The declared hook the core's status cache asks (controlplane.hooks), pointed at a computation that fails.
    settings.CONTROLPLANE_HOOKS = {
        **settings.CONTROLPLANE_HOOKS,
        "status.compute": "tests.observatory.test_pages.status_store_down",
    }
    page = console(owner_a).get("/admin/").content.decode()
    assert 'data-status="UNKNOWN"' in page and "System UNKNOWN" in page


@override_settings(REDIS_URL=CLOSED_REDIS)
def test_with_redis_unreachable_the_redis_card_and_every_breaker_say_unknown(owner_a):
    page = console(owner_a).get("/admin/observatory/connections/").content.decode()
    redis_card = page[page.index('id="provider-redis"') :]
    redis_card = redis_card[: redis_card.index('id="provider-', 10) if 'id="provider-' in redis_card[10:] else None]
    assert (
        'data-connected="false"'
        in page[page.index('id="provider-redis"') - 120 : page.index('id="provider-redis"') + 200]
    )
    assert "failing: INTEGRATION_UNREACHABLE" in redis_card
    assert "connected</span>" not in redis_card.split("Last verified")[0]
    assert page.count('cp-badge cp-unknown">unknown') >= 10
    assert 'id="status-banner"' in page


def test_every_provider_has_a_verify_button_for_operators_redis_included(operator_a):
    page = console(operator_a).get("/admin/observatory/connections/").content.decode()
    assert 'hx-post="/admin/observatory/connections/redis/verify/"' in page
    assert 'hx-post="/admin/observatory/connections/polygon/verify/"' in page
    assert 'class="key-entry"' not in page  # operators verify; owners enter keys


def test_verify_returns_the_card_with_its_result_and_records_a_failed_use_apart(operator_a, tenant_a):
    client = console(operator_a)
    response = client.post("/admin/observatory/connections/redis/verify/", HTTP_HX_REQUEST="true")
    card = response.content.decode()
    assert response.status_code == 200 and 'class="verify-result' in card and "verify-trace-id" in card
    assert 'data-status="ok"' in card
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        event = IntegrationUsageEvent.objects.get(provider="redis")
        IntegrationUsageEvent.objects.create(
            tenant_id=tenant_a.id,
            provider="redis",
            operation="ping",
            status="error",
            error_code="INTEGRATION_UNREACHABLE",
            latency_ms=3,
            trace_id="failedtrace01",
        )
    assert event.trace_id in card
    card = client.post("/admin/observatory/connections/redis/verify/", HTTP_HX_REQUEST="true").content.decode()
    assert "<strong>2</strong> successful, <strong>1</strong> failed" in card


def test_the_proof_of_use_popout_lists_the_verify_with_its_trace_and_filters_by_bot(operator_a, tenant_a):
    client = console(operator_a)
    client.post("/admin/observatory/connections/redis/verify/", HTTP_HX_REQUEST="true")
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        IntegrationUsageEvent.objects.create(
            tenant_id=tenant_a.id,
            provider="redis",
            operation="ping",
            status="ok",
            latency_ms=1,
            bot_id=77,
            trace_id="bottrace0001",
        )
    popout = client.get("/admin/observatory/connections/redis/usage/").content.decode()
    assert popout.count('class="usage-event"') == 2 and "bottrace0001" in popout
    only_bot = client.get("/admin/observatory/connections/redis/usage/?bot_id=77").content.decode()
    assert only_bot.count('class="usage-event"') == 1 and "/admin/bots/bot/77/change/" in only_bot


def test_a_viewer_sees_no_key_entry_and_no_action_and_a_forged_post_is_refused(viewer_a, tenant_a):
    client = console(viewer_a)
    page = client.get("/admin/observatory/connections/").content.decode()
    assert 'class="key-entry"' not in page and "verify-button" not in page and "Read only" in page
    assert client.post("/admin/observatory/connections/redis/verify/").status_code == 403
    assert client.post("/admin/observatory/connections/polygon/keys/", {"POLYGON_API_KEY": "x" * 20}).status_code == 403
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        assert not IntegrationCredential.objects.exists()
        assert not IntegrationUsageEvent.objects.exists()


def test_an_owner_enters_a_key_masked_and_it_is_never_echoed(owner_a, tenant_a):
    client = console(owner_a)
    secret = "pk-live-abcdefghijklmnop-9876"
    page = client.get("/admin/observatory/connections/").content.decode()
    assert 'type="password" name="POLYGON_API_KEY"' in page
    response = client.post("/admin/observatory/connections/polygon/keys/", {"POLYGON_API_KEY": secret}, follow=True)
    page = response.content.decode()
    assert secret not in page and "ends in …9876" in page and "Saved POLYGON_API_KEY" in page


def test_a_blank_key_entry_is_refused_naming_the_field_and_saves_nothing(owner_a, tenant_a):
    response = console(owner_a).post(
        "/admin/observatory/connections/polygon/keys/", {"POLYGON_API_KEY": " "}, follow=True
    )
    assert "nothing was saved" in response.content.decode() and "values" in response.content.decode()
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        assert not IntegrationCredential.objects.exists()


def test_a_venue_key_is_entered_or_cleared_only_with_an_authenticator_code(owner_a, tenant_a):
    from controlplane import tenancy

    device = enrol_totp(owner_a)
    client = console(owner_a)
    page = client.get("/admin/observatory/connections/").content.decode()
    assert 'id="otp-ironbeam"' in page and 'id="otp-polygon"' not in page  # venues only
    keys = {"IRONBEAM_USERNAME": "alice", "IRONBEAM_PASSWORD": "pw-123456789012", "IRONBEAM_API_KEY": "k" * 16}
    refused = client.post("/admin/observatory/connections/ironbeam/keys/", keys, follow=True).content.decode()
    assert "nothing was saved" in refused and "second factor" in refused
    with tenancy.tenant_context(tenant_a.id):
        assert not IntegrationCredential.objects.exists()
    saved = client.post(
        "/admin/observatory/connections/ironbeam/keys/", {**keys, "otp_token": totp_code(device)}, follow=True
    ).content.decode()
    assert "Saved IRONBEAM_USERNAME" in saved
    cleared = client.post("/admin/observatory/connections/ironbeam/keys/", {"clear": "IRONBEAM_USERNAME"}, follow=True)
    assert "Cleared IRONBEAM_USERNAME" in cleared.content.decode()  # the step-up of a moment ago, for this session


def test_the_trace_explorer_lists_what_a_verify_recorded_in_time_order(operator_a, tenant_a):
    client = console(operator_a)
    card = client.post("/admin/observatory/connections/redis/verify/", HTTP_HX_REQUEST="true").content.decode()
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        trace_id = IntegrationUsageEvent.objects.get(provider="redis").trace_id
    assert trace_id in card
    page = client.get(f"/admin/observatory/trace/?trace_id={trace_id}").content.decode()
    kinds = [chunk.split('"')[0] for chunk in page.split('class="trace-row" data-kind="')[1:]]
    assert set(kinds) == {"provider call", "verification", "audit event"}
    assert client.get("/admin/observatory/trace/?trace_id=nothing-here-123").content.decode().count("trace-row") == 0
    assert "8 to 64" in client.get("/admin/observatory/trace/?trace_id=x").content.decode()


def test_a_member_of_another_tenant_cannot_reach_this_tenants_connections(owner_b, owner_a):
    client = console(owner_b)
    page = client.get("/admin/observatory/connections/").content.decode()
    assert "tenant-b" in page and "tenant-a" not in page.split('id="tenant-switch"')[1].split("</select>")[0]


@pytest.mark.parametrize("role", [Membership.Role.OPERATOR, Membership.Role.OWNER])
def test_operators_and_owners_get_the_verify_button(role, tenant_a):
    from controlplane import tenancy

    user = UserFactory(username=f"u-{role}")
    with tenancy.tenant_context(tenant_a.id):
        Membership.objects.create(tenant=tenant_a, user=user, role=role)
    assert "verify-button" in console(user).get("/admin/observatory/connections/").content.decode()


def test_a_viewer_gets_no_admin_actions_and_a_forged_kill_changes_nothing(viewer_a, operator_a, owner_a, tenant_a):
    from bots import services
    from bots.models import Bot
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        bot = services.bot_create(
            actor=owner_a,
            name="watched",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
    viewer = console(viewer_a)
    page = viewer.get("/admin/bots/bot/")
    assert page.status_code == 200 and "watched" in page.content.decode()
    assert 'name="action"' not in page.content.decode()
    viewer.post("/admin/bots/bot/", {"action": "kill", "_selected_action": [bot.id], "index": 0})
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.get(pk=bot.id).killed is False
    assert 'value="kill"' in console(operator_a).get("/admin/bots/bot/").content.decode()


def test_keys_needed_never_says_every_key_is_set_while_a_configured_provider_fails(owner_a, tenant_a, settings):
    from controlplane import tenancy
    from integrations import services

    settings.INTEGRATION_ENV_CREDENTIALS = {
        **settings.INTEGRATION_ENV_CREDENTIALS,
        "POLYGON_API_KEY": "pk-env-1234567890",
    }
    settings.INTEGRATION_BASE_URLS = {"polygon": "http://127.0.0.1:1"}
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    with tenancy.tenant_context(tenant_a.id):
        services.verify_provider(provider="polygon", actor=owner_a)
        services.verify_provider(provider="redis", actor=owner_a)
    page = console(owner_a).get("/admin/integrations/integrationcredential/keys-needed/").content.decode()
    assert 'id="keys-complete"' not in page
    assert 'id="keys-failing"' in page and "<strong>polygon</strong>: INTEGRATION_UNREACHABLE" in page


def test_a_bots_detail_page_writes_its_flags_as_words_not_red_crosses(owner_a, tenant_a):
    from bots import services
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        bot = services.bot_create(
            actor=owner_a,
            name="calm",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
    page = console(owner_a).get(f"/admin/bots/bot/{bot.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "close_small" not in html  # unfold's red cross for False
    killed_row = html[html.index(">Killed</label>") :][:300]
    assert 'max-w-2xl *:rounded-default">no</div>' in killed_row


def test_the_usage_event_list_filters_by_provider_without_reading_the_values_present(owner_a, tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from controlplane import tenancy

    with tenancy.tenant_context(tenant_a.id):
        for provider in ("redis", "polygon"):
            IntegrationUsageEvent.objects.create(
                tenant_id=tenant_a.id,
                provider=provider,
                operation="verify",
                status="ok",
                latency_ms=1,
                trace_id=f"trace-{provider}-0001",
            )
    client = console(owner_a)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/integrations/integrationusageevent/").content.decode()
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"] and "integrationusageevent" in q["sql"]]
    assert "Hyperliquid" in page  # every registry provider is offered, used or not
    only = client.get("/admin/integrations/integrationusageevent/?provider=polygon").context["cl"].result_list
    assert [e.provider for e in only] == ["polygon"]
