"""Twilio through its official SDK against a local server speaking Twilio's documented Account and Message
resources: what is sent, what is recorded (proof-of-use), and how Twilio's errors map onto our codes."""

import pytest
from werkzeug import Response

from controlplane import hooks, tenancy
from integrations import services
from integrations.models import IntegrationUsageEvent
from integrations.providers.base import IntegrationError
from integrations.providers.twilio import fake


@pytest.fixture
def twilio(point_at, tenant_a, owner_a):
    """Tenant A's Twilio keys entered as an operator would, and Twilio's API served locally."""
    server = point_at("twilio")
    with tenancy.tenant_context(tenant_a.id, user_id=owner_a.id):
        services.credentials_set(provider="twilio", values=fake.CREDENTIALS, actor=owner_a)
    return server


def _usage(tenant):
    with tenancy.tenant_context(tenant.id):
        return [(e.operation, e.status, e.error_code) for e in IntegrationUsageEvent.objects.order_by("id")]


@pytest.mark.django_db
def test_send_sms_hook_posts_to_from_and_body_and_returns_the_message_sid(twilio, tenant_a):
    fake.serve_messages(twilio)
    sid = hooks.hook("sms.send")(tenant_id=tenant_a.id, to="+15558675310", body="bot 7 killed")
    assert sid.startswith("SM") and len(sid) == 34
    [sent] = fake.sent_messages(twilio)
    assert sent == {"To": "+15558675310", "From": fake.FROM_NUMBER, "Body": "bot 7 killed"}
    [(request, _)] = twilio.log
    assert request.authorization.username == fake.ACCOUNT_SID
    assert request.authorization.password == fake.AUTH_TOKEN
    assert _usage(tenant_a) == [("messages.create", "ok", "")]


@pytest.mark.django_db
def test_twilio_error_body_maps_to_our_code_with_twilio_code_in_details(twilio, tenant_a):
    twilio.expect_request(fake.messages_path(), method="POST").respond_with_response(
        fake.error(400, 21211, "The 'To' number +1555 is not a valid phone number.")
    )
    with pytest.raises(IntegrationError) as caught:
        hooks.hook("sms.send")(tenant_id=tenant_a.id, to="+1555", body="x")
    error = caught.value
    assert error.code == "INTEGRATION_BAD_RESPONSE" and error.permanent
    assert error.details["twilio_code"] == 21211 and "21211" in error.message and "not a valid" in error.message
    assert _usage(tenant_a) == [("messages.create", "error", "INTEGRATION_BAD_RESPONSE")]


@pytest.mark.django_db
def test_a_send_is_not_repeated_when_twilio_fails(twilio, tenant_a, settings):
    """A 500 may come after the message was queued: the client does not resend on its own."""
    settings.INTEGRATION_RETRY_ATTEMPTS = 3
    twilio.expect_request(fake.messages_path(), method="POST").respond_with_response(
        Response("<html>upstream</html>", 500)
    )
    with pytest.raises(IntegrationError) as caught:
        hooks.hook("sms.send")(tenant_id=tenant_a.id, to="+15558675310", body="x")
    assert caught.value.code == "INTEGRATION_UNREACHABLE" and not caught.value.permanent
    assert len(twilio.log) == 1


@pytest.mark.django_db
def test_a_refused_token_is_auth_failed(twilio, tenant_a):
    twilio.expect_request(fake.messages_path(), method="POST").respond_with_response(
        fake.error(401, 20003, "Authenticate")
    )
    with pytest.raises(IntegrationError) as caught:
        hooks.hook("sms.send")(tenant_id=tenant_a.id, to="+15558675310", body="x")
    assert caught.value.code == "INTEGRATION_AUTH_FAILED"


@pytest.mark.django_db
def test_without_a_sending_number_nothing_is_sent(point_at, tenant_a, owner_a):
    server = point_at("twilio")
    with tenancy.tenant_context(tenant_a.id, user_id=owner_a.id):
        services.credentials_set(
            provider="twilio",
            values={k: v for k, v in fake.CREDENTIALS.items() if k != "TWILIO_FROM_NUMBER"},
            actor=owner_a,
        )
    with pytest.raises(IntegrationError) as caught:
        hooks.hook("sms.send")(tenant_id=tenant_a.id, to="+15558675310", body="x")
    assert caught.value.code == "INTEGRATION_KEY_MISSING"
    assert caught.value.details["missing_env_vars"] == ["TWILIO_FROM_NUMBER"]
    assert server.log == []


@pytest.mark.django_db
def test_verify_fetches_the_account_through_the_sdk(twilio, tenant_a, owner_a):
    fake.serve_account(twilio)
    with tenancy.tenant_context(tenant_a.id, user_id=owner_a.id):
        result = services.verify_provider(provider="twilio", actor=owner_a)
    assert result.status == "ok"
    [(request, _)] = twilio.log
    assert request.path == f"/2010-04-01/Accounts/{fake.ACCOUNT_SID}.json"


@pytest.mark.django_db
def test_verify_of_a_suspended_account_fails(twilio, tenant_a, owner_a):
    fake.serve_account(twilio, status="suspended")
    with tenancy.tenant_context(tenant_a.id, user_id=owner_a.id):
        result = services.verify_provider(provider="twilio", actor=owner_a)
    assert result.status == "failed" and result.error_code == "INTEGRATION_AUTH_FAILED"
