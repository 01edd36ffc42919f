"""Key permissions, fail closed (issue 13, defect 4): each venue's verify reads what its key may do, through the
real client and ccxt code against a local server answering in the venue's documented shapes. A key that can
withdraw or transfer fails verify with INTEGRATION_KEY_TOO_POWERFUL and no LIVE start passes; a venue that cannot
tell stores ``unknown`` and LIVE waits for an owner's confirmation of that very key (audited; others refused)."""

from __future__ import annotations

import json

import ccxt
import pytest
from werkzeug import Response

from bots.routing import integration_blockers
from oversight.gates import promotion_gates
from bots.models import Stage
from controlplane import tenancy
from controlplane.models import AuditEvent
from integrations import safe_start as gates, services
from integrations.models import IntegrationVerification, KeyPermissionConfirmation
from integrations.providers.tradovate.fake import CREDS as TRADOVATE
from integrations.providers.tradovate.fake import serve_session
from tests.integrations.live_bots import confirm_trade_only, live_tradovate_bot
from tests.conftest import present_second_factor

KEYS = {
    "kraken": {"KRAKEN_API_KEY": "kr-abcdefghijkl", "KRAKEN_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0"},
    "coinbase": {"COINBASE_API_KEY": "cb-abcdefghijkl", "COINBASE_API_SECRET": "cb-secret-abcdefghijkl"},
    "binanceus": {"BINANCEUS_API_KEY": "bn-abcdefghijkl", "BINANCEUS_API_SECRET": "bn-secret-abcdefghijkl"},
    "ironbeam": {"IRONBEAM_USERNAME": "bob", "IRONBEAM_API_KEY": "ib-abcdefghijkl", "IRONBEAM_ENVIRONMENT": "demo"},
    "tradovate": TRADOVATE,
}
AGENT_KEY = "0x" + "2" * 64
AGENT_ADDRESS = ccxt.Exchange.eth_get_address_from_private_key(AGENT_KEY).lower()
MASTER = "0x" + "1" * 40


@pytest.fixture(autouse=True)
def one_attempt(settings):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1


@pytest.fixture
def tradovate(point_at, settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    return point_at("tradovate")


def _set(client, provider, values):
    present_second_factor(client)  # a venue key needs a fresh second factor
    response = client.post("/api/integrations/credentials", {"provider": provider, "values": values}, format="json")
    assert response.status_code == 201, response.json()


def _verify(client, provider):
    response = client.post("/api/integrations/verify", {"provider": provider}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def _live_blockers(tenant, venue):
    with tenancy.tenant_context(tenant.id):
        return [
            (b["provider"], b["code"])
            for b in gates.safe_start_blockers(venue=venue, data_source="imported", stage=Stage.LIVE)
        ]


def _confirm(client, provider):
    return client.post("/api/integrations/confirm-permissions", {"provider": provider}, format="json")


# --- Coinbase: GET /api/v3/brokerage/key_permissions ----------------------------------------------------------


def _coinbase(server, *, can_trade=True, can_transfer=False):
    server.expect_request("/api/v3/brokerage/key_permissions", method="GET").respond_with_json(
        {
            "can_view": True,
            "can_trade": can_trade,
            "can_transfer": can_transfer,
            "portfolio_uuid": "b87a2d3f-8a1e-49b3-a4ea-402d8c389aca",
            "portfolio_type": "DEFAULT",
        }
    )


@pytest.mark.django_db
def test_a_coinbase_trade_only_key_passes_and_its_permissions_are_stored(api_owner_a, tenant_a, point_at):
    server = point_at("coinbase")
    _coinbase(server)
    _set(api_owner_a, "coinbase", KEYS["coinbase"])
    body = _verify(api_owner_a, "coinbase")
    assert body["status"] == "ok", body
    assert body["permissions"]["can_withdraw"] is False and body["permissions"]["can_transfer"] is False
    assert body["permissions"]["reported"]["portfolio_type"] == "DEFAULT"
    assert body["permissions_confirmation"] == "not_needed"
    [request] = [r for r, _ in server.log]
    assert request.headers.get("CB-ACCESS-KEY") == KEYS["coinbase"]["COINBASE_API_KEY"]  # the signed call itself
    assert _live_blockers(tenant_a, "coinbase") == []


@pytest.mark.django_db
def test_a_coinbase_key_that_can_transfer_fails_verify_and_blocks_live(api_owner_a, tenant_a, point_at):
    """Regression: today's verify passes this key with a warning."""
    _coinbase(point_at("coinbase"), can_transfer=True)
    _set(api_owner_a, "coinbase", KEYS["coinbase"])
    body = _verify(api_owner_a, "coinbase")
    assert (body["status"], body["error_code"]) == ("failed", "INTEGRATION_KEY_TOO_POWERFUL")
    assert "withdraw and transfer" in body["message"] and "leave Transfer off" in body["message"]
    assert body["suggested_fix"].startswith("Create a key with view and trade permissions only")
    assert body["permissions"]["can_transfer"] is True  # what the venue said is kept, also when verify fails
    assert _live_blockers(tenant_a, "coinbase") == [("coinbase", "INTEGRATION_KEY_TOO_POWERFUL")]


@pytest.mark.django_db
def test_a_coinbase_key_that_cannot_trade_fails_as_refused(api_owner_a, point_at):
    _coinbase(point_at("coinbase"), can_trade=False)
    _set(api_owner_a, "coinbase", KEYS["coinbase"])
    assert _verify(api_owner_a, "coinbase")["error_code"] == "INTEGRATION_AUTH_FAILED"


# --- Kraken: no permissions call; WithdrawMethods is answered only to a withdraw-capable key -------------------


def _kraken(server, *, can_withdraw):
    server.expect_request("/0/private/Balance", method="POST").respond_with_json(
        {"error": [], "result": {"ZUSD": "5000.0000", "XXBT": "1.0000000000"}}
    )
    if can_withdraw:
        server.expect_request("/0/private/WithdrawMethods", method="POST").respond_with_json(
            {
                "error": [],
                "result": [
                    {
                        "asset": "XXBT",
                        "method_id": "a1b2",
                        "method": "Bitcoin",
                        "network_id": "c3d4",
                        "network": "Bitcoin",
                        "minimum": "0.0004",
                        "limits": [],
                    }
                ],
            }
        )
    else:
        server.expect_request("/0/private/WithdrawMethods", method="POST").respond_with_json(
            {"error": ["EGeneral:Permission denied"]}
        )


@pytest.mark.django_db
def test_a_kraken_key_without_withdraw_funds_passes(api_owner_a, tenant_a, point_at):
    server = point_at("kraken")
    _kraken(server, can_withdraw=False)
    _set(api_owner_a, "kraken", KEYS["kraken"])
    body = _verify(api_owner_a, "kraken")
    assert body["status"] == "ok", body
    assert body["permissions"] == {
        "source": "POST /0/private/WithdrawMethods (read-only probe)",
        "can_trade": None,
        "can_withdraw": False,
        "can_transfer": False,
        "reported": {"WithdrawMethods": "EGeneral:Permission denied"},
    }
    assert all(request.headers.get("API-Key") == KEYS["kraken"]["KRAKEN_API_KEY"] for request, _ in server.log)
    assert _live_blockers(tenant_a, "kraken") == []


@pytest.mark.django_db
def test_a_kraken_key_with_withdraw_funds_fails_verify(api_owner_a, tenant_a, point_at):
    """Regression: today Kraken's key is not checked at all."""
    _kraken(point_at("kraken"), can_withdraw=True)
    _set(api_owner_a, "kraken", KEYS["kraken"])
    body = _verify(api_owner_a, "kraken")
    assert body["error_code"] == "INTEGRATION_KEY_TOO_POWERFUL" and "Withdraw Funds off" in body["message"]
    assert _live_blockers(tenant_a, "kraken") == [("kraken", "INTEGRATION_KEY_TOO_POWERFUL")]


# --- Binance.US: GET /api/v3/account, then GET /sapi/v1/account/apiRestrictions --------------------------------

ACCOUNT = {
    "makerCommission": 10,
    "takerCommission": 10,
    "buyerCommission": 0,
    "sellerCommission": 0,
    "canTrade": True,
    "canWithdraw": True,
    "canDeposit": True,
    "updateTime": 1699999999000,
    "accountType": "SPOT",
    "balances": [{"asset": "USD", "free": "5000.00", "locked": "0.00"}],
    "permissions": ["SPOT"],
}


def _restrictions(*, withdrawals=False, internal_transfer=False):
    return {
        "ipRestrict": True,
        "createTime": 1698645219000,
        "enableReading": True,
        "enableSpotAndMarginTrading": True,
        "enableWithdrawals": withdrawals,
        "enableInternalTransfer": internal_transfer,
        "enableMargin": False,
        "enableFutures": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "restrictions,code",
    [
        (_restrictions(), None),
        (_restrictions(withdrawals=True), "INTEGRATION_KEY_TOO_POWERFUL"),
        (_restrictions(internal_transfer=True), "INTEGRATION_KEY_TOO_POWERFUL"),
    ],
)
def test_binanceus_judges_the_key_by_its_api_restrictions(api_owner_a, tenant_a, point_at, restrictions, code):
    """Regression: today a withdraw-capable Binance.US key passes with a warning."""
    server = point_at("binanceus")
    server.expect_request("/api/v3/account", method="GET").respond_with_json(ACCOUNT)
    server.expect_request("/sapi/v1/account/apiRestrictions", method="GET").respond_with_json(restrictions)
    _set(api_owner_a, "binanceus", KEYS["binanceus"])
    body = _verify(api_owner_a, "binanceus")
    assert body["error_code"] == code, body
    assert body["permissions"]["source"] == "GET /sapi/v1/account/apiRestrictions"
    assert all("signature=" in request.query_string.decode() for request, _ in server.log)
    assert _live_blockers(tenant_a, "binanceus") == ([] if code is None else [("binanceus", code)])


@pytest.mark.django_db
def test_binanceus_without_a_key_permissions_answer_is_unknown_and_needs_the_owner(
    api_owner_a, api_operator_a, tenant_a, point_at
):
    server = point_at("binanceus")
    server.expect_request("/api/v3/account", method="GET").respond_with_json(ACCOUNT)
    server.expect_request("/sapi/v1/account/apiRestrictions").respond_with_response(
        Response(
            json.dumps({"code": -1002, "msg": "You are not authorized to execute this request."}),
            status=401,
            content_type="application/json",
        )
    )
    _set(api_owner_a, "binanceus", KEYS["binanceus"])
    body = _verify(api_owner_a, "binanceus")
    assert (body["status"], body["permissions"], body["permissions_confirmation"]) == ("ok", "unknown", "needed")
    assert _live_blockers(tenant_a, "binanceus") == [("binanceus", "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED")]
    assert _confirm(api_operator_a, "binanceus").status_code == 403
    assert _confirm(api_owner_a, "binanceus").status_code == 201
    assert _live_blockers(tenant_a, "binanceus") == []


# --- Hyperliquid: the account's own key can withdraw; an API wallet cannot -------------------------------------


def _hyperliquid(server, *, role):
    server.expect_request("/exchange", method="POST").respond_with_json(
        {"status": "ok", "response": {"type": "default"}}
    )
    server.expect_request("/info", method="POST", json={"type": "userRole", "user": AGENT_ADDRESS}).respond_with_json(
        role
    )


@pytest.mark.django_db
def test_a_hyperliquid_api_wallet_of_the_account_passes(api_owner_a, tenant_a, point_at):
    server = point_at("hyperliquid")
    _hyperliquid(server, role={"role": "agent", "data": {"user": MASTER}})
    _set(
        api_owner_a,
        "hyperliquid",
        {
            "HYPERLIQUID_WALLET_ADDRESS": MASTER,
            "HYPERLIQUID_PRIVATE_KEY": AGENT_KEY,
            "HYPERLIQUID_ENVIRONMENT": "testnet",
        },
    )
    body = _verify(api_owner_a, "hyperliquid")
    assert body["status"] == "ok", body
    assert body["permissions"]["reported"] == {"signer": AGENT_ADDRESS, "role": "agent", "master": MASTER}
    noop = json.loads(server.log[0][0].get_data())
    assert noop["action"] == {"type": "noop"} and {"r", "s", "v"} <= set(noop["signature"])
    assert _live_blockers(tenant_a, "hyperliquid") == []


@pytest.mark.django_db
def test_the_hyperliquid_accounts_own_key_is_too_powerful(api_owner_a, tenant_a, point_at):
    """Regression: today the account's own private key passes verify."""
    server = point_at("hyperliquid")
    server.expect_request("/exchange", method="POST").respond_with_json(
        {"status": "ok", "response": {"type": "default"}}
    )
    _set(
        api_owner_a,
        "hyperliquid",
        {
            "HYPERLIQUID_WALLET_ADDRESS": AGENT_ADDRESS,
            "HYPERLIQUID_PRIVATE_KEY": AGENT_KEY,
            "HYPERLIQUID_ENVIRONMENT": "testnet",
        },
    )
    body = _verify(api_owner_a, "hyperliquid")
    assert body["error_code"] == "INTEGRATION_KEY_TOO_POWERFUL" and "API wallet" in body["message"]
    assert _live_blockers(tenant_a, "hyperliquid") == [("hyperliquid", "INTEGRATION_KEY_TOO_POWERFUL")]


@pytest.mark.django_db
def test_an_api_wallet_of_another_hyperliquid_account_is_refused(api_owner_a, point_at):
    _hyperliquid(point_at("hyperliquid"), role={"role": "agent", "data": {"user": "0x" + "3" * 40}})
    _set(
        api_owner_a,
        "hyperliquid",
        {
            "HYPERLIQUID_WALLET_ADDRESS": MASTER,
            "HYPERLIQUID_PRIVATE_KEY": AGENT_KEY,
            "HYPERLIQUID_ENVIRONMENT": "testnet",
        },
    )
    body = _verify(api_owner_a, "hyperliquid")
    assert body["error_code"] == "INTEGRATION_AUTH_FAILED" and "not as an API wallet of" in body["message"]


# --- Tradovate and Ironbeam: nothing in their APIs says what a key may do ----------------------------------------


def _ironbeam(server):
    server.expect_request("/auth", method="POST").respond_with_json(
        {"token": "ib-tok", "status": "OK", "message": "OK"}
    )
    server.expect_request("/info/trader").respond_with_json(
        {"accounts": ["51234"], "isLive": False, "traderId": "bob", "status": "OK", "message": "OK"}
    )


@pytest.mark.django_db
def test_ironbeam_permissions_are_unknown_and_live_waits_for_an_owner_of_this_key(
    api_owner_a, api_operator_a, api_owner_b, tenant_a, owner_a, point_at
):
    _ironbeam(point_at("ironbeam"))
    _set(api_owner_a, "ironbeam", KEYS["ironbeam"])
    body = _verify(api_owner_a, "ironbeam")
    assert (body["status"], body["permissions"]) == ("ok", "unknown")
    [blocker] = [b for b in _live_blockers(tenant_a, "ironbeam")]
    assert blocker == ("ironbeam", "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED")
    with tenancy.tenant_context(tenant_a.id):
        assert gates.safe_start_blockers(venue="ironbeam", data_source="imported", stage=Stage.PAPER) == []

    refused = _confirm(api_operator_a, "ironbeam")
    assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")
    other_tenant = _confirm(api_owner_b, "ironbeam")  # tenant B never verified Ironbeam
    assert (other_tenant.status_code, other_tenant.json()["error_code"]) == (409, "INTEGRATION_UNVERIFIED")
    assert _live_blockers(tenant_a, "ironbeam") == [("ironbeam", "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED")]

    confirmed = _confirm(api_owner_a, "ironbeam")
    assert confirmed.status_code == 201, confirmed.json()
    assert confirmed.json()["permissions"] == "unknown" and confirmed.json()["confirmed_by"] == owner_a.username
    assert _live_blockers(tenant_a, "ironbeam") == []
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.get(action="integration.key_permissions.confirm")
        assert (event.resource_id, event.actor_user_id, event.after_state["confirmed"]) == (
            "ironbeam",
            owner_a.id,
            True,
        )
        assert event.trace_id == confirmed.json()["trace_id"]

    assert _verify(api_owner_a, "ironbeam")["permissions_confirmation"] == "confirmed"  # same key: still holds
    assert _live_blockers(tenant_a, "ironbeam") == []

    _set(api_owner_a, "ironbeam", {"IRONBEAM_API_KEY": "ib-another-key-0000"})  # a new key voids it
    assert _verify(api_owner_a, "ironbeam")["permissions_confirmation"] == "needed"
    assert _live_blockers(tenant_a, "ironbeam") == [("ironbeam", "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED")]


@pytest.mark.django_db
def test_a_reverify_that_reads_other_permissions_voids_the_confirmation(api_owner_a, tenant_a, point_at):
    server = point_at("binanceus")
    server.expect_request("/api/v3/account").respond_with_json(ACCOUNT)
    server.expect_oneshot_request("/sapi/v1/account/apiRestrictions").respond_with_response(Response(status=404))
    server.expect_oneshot_request("/sapi/v1/account/apiRestrictions").respond_with_json(_restrictions())
    server.expect_oneshot_request("/sapi/v1/account/apiRestrictions").respond_with_response(Response(status=404))
    _set(api_owner_a, "binanceus", KEYS["binanceus"])
    assert _verify(api_owner_a, "binanceus")["permissions"] == "unknown"
    assert _confirm(api_owner_a, "binanceus").status_code == 201
    assert _verify(api_owner_a, "binanceus")["permissions"]["can_withdraw"] is False  # the venue answered
    again = _verify(api_owner_a, "binanceus")  # the same key, unknown again: the old word no longer counts
    assert (again["permissions"], again["permissions_confirmation"]) == ("unknown", "needed")
    assert _live_blockers(tenant_a, "binanceus") == [("binanceus", "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED")]


@pytest.mark.django_db
def test_confirming_a_key_the_venue_reported_is_refused(api_owner_a, point_at):
    _coinbase(point_at("coinbase"))
    _set(api_owner_a, "coinbase", KEYS["coinbase"])
    _verify(api_owner_a, "coinbase")
    response = _confirm(api_owner_a, "coinbase")
    assert (response.status_code, response.json()["error_code"]) == (409, "CONFLICT")
    assert _confirm(api_owner_a, "databento").json()["error_code"] == "VALIDATION_ERROR"


@pytest.mark.django_db
def test_a_live_tradovate_bot_cannot_start_until_an_owner_confirms_its_key(
    tenant_a, owner_a, api_owner_a, api_operator_a, tradovate
):
    """The LIVE gate of a bot (oversight.gates, runner start) reads the same rule; paper is unaffected."""
    from tests.integrations.live_bots import es_instrument

    with tenancy.tenant_context(tenant_a.id):
        es_instrument()
    bot = live_tradovate_bot(tenant=tenant_a, owner=owner_a)
    serve_session(tradovate)
    assert _verify(api_owner_a, "tradovate")["permissions"] == "unknown"
    response = api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json")
    assert (response.status_code, response.json()["error_code"]) == (409, "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED")
    assert "POST /api/integrations/confirm-permissions" in response.json()["suggested_fix"]
    with tenancy.tenant_context(tenant_a.id):
        [venue_gate] = [g for g in promotion_gates(bot, Stage.LIVE, actor=owner_a) if g.gate == "venue_verified"]
    assert not venue_gate.passed and "no owner has confirmed" in venue_gate.message
    with tenancy.tenant_context(tenant_a.id):
        assert integration_blockers(bot, stage=Stage.PAPER) == []  # paper trades on sim: no venue key asked
    assert confirm_trade_only(tenant=tenant_a, owner=owner_a).provider == "tradovate"
    with tenancy.tenant_context(tenant_a.id):
        assert integration_blockers(bot, stage=Stage.LIVE) == []
        [venue_gate] = [g for g in promotion_gates(bot, Stage.LIVE, actor=owner_a) if g.gate == "venue_verified"]
    assert venue_gate.passed


@pytest.mark.django_db
def test_a_venue_verified_before_permissions_were_read_blocks_live(tenant_a, owner_a):
    from django.utils import timezone

    with tenancy.tenant_context(tenant_a.id):
        services.credentials_set(provider="ironbeam", values=KEYS["ironbeam"], actor=owner_a)
        IntegrationVerification.objects.create(
            tenant=tenant_a, provider="ironbeam", status="ok", trace_id="old", verified_at=timezone.now()
        )
    assert _live_blockers(tenant_a, "ironbeam") == [("ironbeam", "INTEGRATION_UNVERIFIED")]
    with tenancy.tenant_context(tenant_a.id):
        assert not KeyPermissionConfirmation.objects.exists()


@pytest.mark.django_db
def test_the_console_shows_an_unknown_key_and_only_an_owner_confirms_it_in_admin(
    api_owner_a, owner_a, operator_a, tenant_a, point_at
):
    from tests.observatory.test_pages import console

    _ironbeam(point_at("ironbeam"))
    _set(api_owner_a, "ironbeam", KEYS["ironbeam"])
    _verify(api_owner_a, "ironbeam")
    with tenancy.tenant_context(tenant_a.id):
        verification_id = IntegrationVerification.objects.get(provider="ironbeam").id
    owner = console(owner_a)  # one login: each takes a fresh authenticator code
    card = owner.get("/admin/observatory/connections/").content.decode()
    assert "LIVE waits for an owner to confirm the key is trade-only" in card

    operator = console(operator_a)
    assert (
        'value="confirm_key_permissions"'
        not in operator.get("/admin/integrations/integrationverification/").content.decode()
    )
    operator.post(
        "/admin/integrations/integrationverification/",
        {"action": "confirm_key_permissions", "_selected_action": [verification_id], "index": 0},
    )
    assert _live_blockers(tenant_a, "ironbeam") == [("ironbeam", "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED")]

    listing = owner.get("/admin/integrations/integrationverification/").content.decode()
    assert 'value="confirm_key_permissions"' in listing and "unknown" in listing
    owner.post(
        "/admin/integrations/integrationverification/",
        {"action": "confirm_key_permissions", "_selected_action": [verification_id], "index": 0},
    )
    assert _live_blockers(tenant_a, "ironbeam") == []
    assert "confirmed trade-only by an owner" in owner.get("/admin/observatory/connections/").content.decode()
    with tenancy.tenant_context(tenant_a.id):
        assert KeyPermissionConfirmation.objects.get().confirmed_by_id == owner_a.id
