"""SMS codes end to end, through the real Twilio client against a local server speaking Twilio's Messages API: a
phone verified by its own round trip, a code sent and verified as a step-up for the credential that verified it,
codes stored only as an HMAC, single use, short-lived, few guesses, and sends limited per user and per address."""

import re
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings

from controlplane import tenancy
from controlplane.models import AuditEvent, SmsCode, StepUp, UserPhone
from integrations import services
from integrations.providers.twilio import fake
from tests.conftest import client_for
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

pytestmark = pytest.mark.django_db

NUMBER = "+15558675310"


@pytest.fixture(autouse=True)
def clean_counters():
    """Send and guess counters live in the shared Redis: drop them after each test."""
    yield
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for pattern in ("*throttle_second_factor_failure_*", "*throttle_sms_*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


@pytest.fixture
def twilio(httpserver, settings, tenant_a, owner_a):
    """Tenant A's Twilio keys, entered as an owner would, and Twilio's API served locally."""
    settings.INTEGRATION_BASE_URLS = {"twilio": httpserver.url_for("").rstrip("/")}
    with tenancy.tenant_context(tenant_a.id, user_id=owner_a.id):
        services.credentials_set(provider="twilio", values=fake.CREDENTIALS, actor=owner_a)
    fake.serve_messages(httpserver)
    return httpserver


def _last_code(server) -> str:
    return re.search(r"code is (\d{6})\.", fake.sent_messages(server)[-1]["Body"]).group(1)


def _verified_phone(api, server) -> None:
    assert api.post("/api/auth/phone", {"number": NUMBER}, format="json").status_code == 202
    answer = api.post("/api/auth/phone/verify", {"code": _last_code(server)}, format="json")
    assert answer.status_code == 200 and answer.json() == {"number": "…5310", "verified": True}


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == code and body["message"] and body["suggested_fix"]
    return body


def test_a_phone_is_verified_by_a_code_texted_to_it(api_owner_a, owner_a, twilio, tenant_a):
    sent = api_owner_a.post("/api/auth/phone", {"number": "+1 555 867 5310"}, format="json")
    assert sent.status_code == 202 and sent.json()["sent_to"] == "…5310"
    [message] = fake.sent_messages(twilio)
    assert message["To"] == NUMBER and message["From"] == fake.FROM_NUMBER
    assert UserPhone.objects.get(user=owner_a).verified_at is None
    wrong = api_owner_a.post("/api/auth/phone/verify", {"code": "000000"}, format="json")
    assert _error(wrong, 400, "VALIDATION_ERROR")["details"] == {"code": ["wrong"]}
    answer = api_owner_a.post("/api/auth/phone/verify", {"code": _last_code(twilio)}, format="json")
    assert answer.status_code == 200 and UserPhone.objects.get(user=owner_a).verified_at is not None
    with tenancy.tenant_context(tenant_a.id):
        assert AuditEvent.objects.filter(action="two_factor.phone.verify", actor="owner-a").exists()
    _error(api_owner_a.post("/api/auth/phone", {"number": "555-0100"}, format="json"), 400, "VALIDATION_ERROR")


def test_an_sms_code_steps_up_the_token_that_verified_it(api_owner_a, owner_a, twilio, tenant_a):
    _verified_phone(api_owner_a, twilio)
    api_owner_a.post("/api/tenant/kill", {"reason": "drill"}, format="json")
    body = _error(api_owner_a.post("/api/tenant/unkill", {"reason": "ok"}, format="json"), 403, "STEP_UP_REQUIRED")
    assert body["details"]["enrolled"] is True  # a verified phone is a factor
    sent = api_owner_a.post("/api/auth/2fa/send", format="json")
    assert sent.status_code == 202 and sent.json()["sent_to"] == "…5310"
    assert "verification code is" in fake.sent_messages(twilio)[-1]["Body"]
    verified = api_owner_a.post("/api/auth/2fa/verify", {"code": _last_code(twilio)}, format="json")
    assert verified.status_code == 200, verified.content
    assert verified.json()["method"] == "sms" and verified.json()["bound_to"] == "api_token"
    assert StepUp.objects.get(user=owner_a).method == "sms"
    assert api_owner_a.post("/api/tenant/unkill", {"reason": "ok"}, format="json").status_code == 200
    other = client_for(owner_a)
    other.post("/api/tenant/kill", {"reason": "again"}, format="json")
    _error(other.post("/api/tenant/unkill", {"reason": "ok"}, format="json"), 403, "STEP_UP_REQUIRED")


def test_codes_are_stored_hashed_and_used_once(api_owner_a, owner_a, twilio):
    _verified_phone(api_owner_a, twilio)
    api_owner_a.post("/api/auth/2fa/send", format="json")
    code = _last_code(twilio)
    row = SmsCode.objects.filter(user=owner_a, purpose="step_up").get()
    assert code not in row.code_hash and len(row.code_hash) == 64
    assert api_owner_a.post("/api/auth/2fa/verify", {"code": code}, format="json").status_code == 200
    again = api_owner_a.post("/api/auth/2fa/verify", {"code": code}, format="json")
    assert _error(again, 400, "VALIDATION_ERROR")["details"] == {"code": ["no live code"]}


def test_an_expired_code_is_refused(api_owner_a, owner_a, twilio):
    _verified_phone(api_owner_a, twilio)
    api_owner_a.post("/api/auth/2fa/send", format="json")
    row = SmsCode.objects.filter(user=owner_a, purpose="step_up").get()
    SmsCode.objects.filter(pk=row.pk).update(expires_at=row.created_at - timedelta(seconds=1))
    late = api_owner_a.post("/api/auth/2fa/verify", {"code": _last_code(twilio)}, format="json")
    assert _error(late, 400, "VALIDATION_ERROR")["details"] == {"code": ["no live code"]}
    assert not StepUp.objects.filter(user=owner_a).exists()


def test_a_code_dies_after_too_many_wrong_guesses(api_owner_a, owner_a, twilio, settings):
    settings.TWO_FACTOR_SMS_MAX_ATTEMPTS = 2
    _verified_phone(api_owner_a, twilio)
    api_owner_a.post("/api/auth/2fa/send", format="json")
    code = _last_code(twilio)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(2):
        response = api_owner_a.post("/api/auth/2fa/verify", {"code": wrong}, format="json")
        assert _error(response, 400, "VALIDATION_ERROR")["details"] == {"code": ["wrong"]}
    dead = api_owner_a.post("/api/auth/2fa/verify", {"code": code}, format="json")
    assert _error(dead, 400, "VALIDATION_ERROR")["details"] == {"code": ["no live code"]}


def test_no_code_is_sent_without_a_verified_phone(api_owner_a, twilio):
    _error(api_owner_a.post("/api/auth/2fa/send", format="json"), 409, "CONFLICT")
    assert fake.sent_messages(twilio) == []


def test_sends_are_rate_limited_per_user_with_retry_after(api_owner_a, owner_a, twilio, settings):
    _verified_phone(api_owner_a, twilio)
    settings.TWO_FACTOR_SMS_SEND_RATE_USER = "3/hour"  # the phone's verification text was the first send
    assert [api_owner_a.post("/api/auth/2fa/send", format="json").status_code for _ in range(2)] == [202, 202]
    limited = api_owner_a.post("/api/auth/2fa/send", format="json")
    _error(limited, 429, "RATE_LIMITED")
    assert int(limited["Retry-After"]) > 0
    assert len(fake.sent_messages(twilio)) == 3  # the verification and two codes; the fourth never left


def test_sends_are_rate_limited_per_client_address(api_owner_a, api_operator_a, operator_a, twilio, settings):
    settings.TWO_FACTOR_SMS_SEND_RATE_IP = "1/hour"
    api_owner_a.defaults["REMOTE_ADDR"] = api_operator_a.defaults["REMOTE_ADDR"] = "10.9.8.7"
    assert api_owner_a.post("/api/auth/phone", {"number": NUMBER}, format="json").status_code == 202
    _error(api_operator_a.post("/api/auth/phone", {"number": "+15558675311"}, format="json"), 429, "RATE_LIMITED")


def test_the_legacy_2fa_edge_functions_name_the_new_endpoints(client):
    for name, endpoint in (
        ("send-2fa-code", "POST /api/auth/2fa/send"),
        ("verify-2fa-code", "POST /api/auth/2fa/verify"),
    ):
        response = client.post(f"/functions/v1/{name}")
        assert response.status_code == 410 and endpoint in response.json()["suggested_fix"]


def test_a_new_number_voids_the_codes_sent_to_the_old_one(api_owner_a, owner_a, twilio):
    _verified_phone(api_owner_a, twilio)
    api_owner_a.post("/api/auth/2fa/send", format="json")
    old_code = _last_code(twilio)
    assert api_owner_a.post("/api/auth/phone", {"number": "+15558675399"}, format="json").status_code == 202
    late = api_owner_a.post("/api/auth/2fa/verify", {"code": old_code}, format="json")
    assert _error(late, 400, "VALIDATION_ERROR")["details"] == {"code": ["no live code"]}
    _error(api_owner_a.post("/api/auth/2fa/send", format="json"), 409, "CONFLICT")  # the new number is unverified
