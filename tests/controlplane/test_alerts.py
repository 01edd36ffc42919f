"""Alerts that reach people: the log line always, a history row, one delivery per recipient who hears the severity,
SMS through Twilio's SDK (a local server speaking its Messages API) and e-mail through Django's locmem backend,
dedup within a window (race-safe), retries with backoff until SENT or FAILED, owners' recipients API, the console."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from werkzeug import Response

from controlplane import alerting, tenancy
from controlplane.alerts import alert
from controlplane.models import Alert, AlertDelivery, AlertRecipient, AuditEvent, OutboxMessage
from integrations import services as integration_services
from integrations.models import IntegrationUsageEvent
from integrations.providers.twilio import fake
from tests.conftest import client_for, console_client, enrol_totp, present_second_factor, totp_code
from tests.factories import TenantFactory
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

PHONE = "+15558675310"


@pytest.fixture
def api_owner_a(owner_a):
    """The owner's API client presenting a current authenticator code: the writes here need a step-up."""
    return present_second_factor(client_for(owner_a))


def test_changing_alert_recipients_needs_a_step_up_and_saves_nothing_without(owner_a, tenant_a):
    plain = client_for(owner_a)
    answer = plain.post(
        "/api/tenant/alert-recipients", {"name": "x", "channel": "sms", "address": PHONE}, format="json"
    )
    assert answer.status_code == 403 and answer.json()["error_code"] == "STEP_UP_REQUIRED"
    with tenancy.tenant_context(tenant_a.id):
        assert not AlertRecipient.objects.exists()


@pytest.fixture
def twilio(httpserver, settings, tenant_a, owner_a):
    """Tenant A's Twilio keys entered by its owner, and Twilio's API served locally."""
    settings.INTEGRATION_BASE_URLS = {"twilio": httpserver.url_for("").rstrip("/")}
    with tenancy.tenant_context(tenant_a.id, user_id=owner_a.id):
        integration_services.credentials_set(provider="twilio", values=fake.CREDENTIALS, actor=owner_a)
    return httpserver


def _recipient(tenant, owner, **values) -> AlertRecipient:
    with tenancy.tenant_context(tenant.id, user_id=owner.id):
        return alerting.recipient_create(actor=owner, **values)


def _in(tenant, fn):
    with tenancy.tenant_context(tenant.id):
        return fn()


def _deliveries(tenant):
    return _in(tenant, lambda: list(AlertDelivery.objects.select_related("alert").order_by("id")))


def _sweep(tenant, *, at=None):
    return _in(tenant, lambda: alerting.deliver_due(now=at))


# --- raising -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_recipient_hears_alerts_from_its_minimum_severity_up(tenant_a, owner_a, json_log_lines):
    sms = _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE, min_severity="critical")
    mail = _recipient(
        tenant_a, owner_a, name="desk", channel="email", address="desk@example.com", min_severity="warning"
    )
    _recipient(
        tenant_a, owner_a, name="off", channel="email", address="off@example.com", min_severity="info", active=False
    )

    alert(event="data.stale", message="ES bars stale", tenant_id=tenant_a.id, severity="warning")
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id, bot_id=7)  # callers' default: critical

    rows = _in(tenant_a, lambda: list(Alert.objects.order_by("id")))
    assert [(r.event, r.severity, r.bot_id) for r in rows] == [
        ("data.stale", "warning", None),
        ("bot.killed", "critical", 7),
    ]
    got = [(d.alert.event, d.recipient_id, d.status, d.address) for d in _deliveries(tenant_a)]
    assert got == [
        ("data.stale", mail.id, "PENDING", "desk@example.com"),
        ("bot.killed", sms.id, "PENDING", PHONE),
        ("bot.killed", mail.id, "PENDING", "desk@example.com"),
    ]
    # Each delivery's task was written to the outbox with it (sent after commit; the relay re-sends a lost one).
    outbox = _in(tenant_a, lambda: list(OutboxMessage.objects.order_by("id")))
    assert [m.kwargs["delivery_id"] for m in outbox] == [d.id for d in _deliveries(tenant_a)]
    assert {m.task for m in outbox} == {"controlplane.deliver_alert"}
    lines = [line for line in json_log_lines() if line.get("alert")]
    assert [(line["alert"], line["level"], line["severity"]) for line in lines] == [
        ("data.stale", "warning", "warning"),
        ("bot.killed", "error", "critical"),
    ]


@pytest.mark.django_db
def test_an_unknown_severity_is_raised_as_critical_not_an_exception(tenant_a):
    row = alert(event="x", message="m", tenant_id=tenant_a.id, severity="error")
    assert row.severity == "critical"


@pytest.mark.django_db
def test_a_platform_alert_is_the_log_line_only(tenant_a, json_log_lines):
    assert alert(event="platform.kill", message="platform killed") is None
    assert _in(tenant_a, lambda: Alert.objects.count()) == 0
    [line] = [line for line in json_log_lines() if line.get("alert")]
    assert line["alert"] == "platform.kill" and line["level"] == "error"


@pytest.mark.django_db
def test_a_repeat_inside_the_window_is_counted_not_delivered(tenant_a, owner_a, settings):
    settings.ALERT_DEDUP_WINDOW_SECONDS = 300
    _recipient(tenant_a, owner_a, name="desk", channel="email", address="desk@example.com", min_severity="info")
    first = alert(event="venue.errors", message="venue errors", tenant_id=tenant_a.id, bot_id=3, values={"rate": 0.5})
    again = alert(event="venue.errors", message="venue errors", tenant_id=tenant_a.id, bot_id=3)
    other_bot = alert(event="venue.errors", message="venue errors", tenant_id=tenant_a.id, bot_id=4)
    assert again.pk == first.pk and again.suppressed_count == 1 and again.last_suppressed_at is not None
    assert other_bot.pk != first.pk
    assert len(_deliveries(tenant_a)) == 2  # one per distinct key
    assert first.fields == {"values": {"rate": 0.5}}

    # Once the window has passed, the same key alerts (and delivers) again.
    _in(tenant_a, lambda: Alert.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=301)))
    later = alert(event="venue.errors", message="venue errors", tenant_id=tenant_a.id, bot_id=3)
    assert later.pk not in (first.pk, other_bot.pk) and later.suppressed_count == 0
    assert len(_deliveries(tenant_a)) == 3


@pytest.mark.django_db
def test_an_explicit_key_groups_different_events(tenant_a):
    a = alert(event="one", message="m", tenant_id=tenant_a.id, key="bot-3-health")
    b = alert(event="two", message="m", tenant_id=tenant_a.id, key="bot-3-health")
    assert a.pk == b.pk and b.suppressed_count == 1


@pytest.fixture
def committed_tenant(django_db_setup, committed_db):
    return TenantFactory(slug="alert-race")


def test_two_workers_raising_the_same_alert_at_once_make_one_row(committed_tenant):
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            barrier.wait(timeout=10)
            row = alert(event="race", message="same alert twice", tenant_id=committed_tenant.id, bot_id=1)
            assert row is not None
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads) and errors == []
    with tenancy.tenant_context(committed_tenant.id), transaction.atomic():
        rows = list(Alert.objects.values_list("event", "suppressed_count"))
    assert rows == [("race", 1)]


# --- delivering ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_sms_alert_goes_through_twilio_with_to_from_and_body(twilio, tenant_a, owner_a):
    fake.serve_messages(twilio)
    _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)
    row = alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id, bot_id=7)
    assert _sweep(tenant_a) == {"sent": 1, "failed": 0, "retrying": 0}
    [sent] = fake.sent_messages(twilio)
    assert sent["To"] == PHONE and sent["From"] == fake.FROM_NUMBER
    assert sent["Body"].startswith("[CRITICAL] bot 7 killed") and "bot.killed" in sent["Body"]
    [delivery] = _deliveries(tenant_a)
    assert delivery.alert_id == row.id and delivery.status == "SENT" and delivery.attempts == 1
    assert delivery.provider_message_id.startswith("SM") and delivery.sent_at and delivery.last_error == ""
    usage = _in(tenant_a, lambda: list(IntegrationUsageEvent.objects.values_list("provider", "operation", "status")))
    assert usage == [("twilio", "messages.create", "ok")]
    assert _sweep(tenant_a) == {"sent": 0, "failed": 0, "retrying": 0}  # a sent delivery is never sent again


@pytest.mark.django_db
def test_the_delivery_task_sends_once_and_a_second_run_does_nothing(twilio, tenant_a, owner_a):
    from controlplane.tasks import deliver_alert

    fake.serve_messages(twilio)
    _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id)
    [delivery] = _deliveries(tenant_a)
    assert deliver_alert(tenant_id=tenant_a.id, delivery_id=delivery.id) == "SENT"
    assert deliver_alert(tenant_id=tenant_a.id, delivery_id=delivery.id) is None
    assert len(fake.sent_messages(twilio)) == 1


@pytest.mark.django_db
def test_a_refused_number_is_recorded_retried_with_backoff_then_failed_and_logged(
    twilio, tenant_a, owner_a, settings, caplog
):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 3
    settings.ALERT_DELIVERY_BACKOFF_SECONDS = 30
    twilio.expect_request(fake.messages_path(), method="POST").respond_with_response(
        fake.error(400, 21211, "The 'To' number +15558675310 is not a valid phone number.")
    )
    _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id)
    start = timezone.now()

    assert _sweep(tenant_a, at=start)["retrying"] == 1
    [delivery] = _deliveries(tenant_a)
    assert delivery.status == "PENDING" and delivery.attempts == 1
    assert "21211" in delivery.last_error and delivery.last_error.startswith("INTEGRATION_BAD_RESPONSE")
    assert timedelta(seconds=29) < delivery.next_attempt_at - start <= timedelta(seconds=31)

    assert _sweep(tenant_a, at=start + timedelta(seconds=10)) == {"sent": 0, "failed": 0, "retrying": 0}  # not due
    assert _sweep(tenant_a, at=start + timedelta(seconds=31))["retrying"] == 1
    [delivery] = _deliveries(tenant_a)
    assert delivery.attempts == 2 and delivery.next_attempt_at - (start + timedelta(seconds=31)) > timedelta(seconds=59)

    with caplog.at_level(logging.ERROR, logger="controlplane.alerting"):
        assert _sweep(tenant_a, at=start + timedelta(seconds=200))["failed"] == 1
    [delivery] = _deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("FAILED", 3, None)
    assert len(fake.sent_messages(twilio)) == 3
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "controlplane.alerting"]
    assert record.delivery_id == delivery.id and "21211" in record.error
    assert _sweep(tenant_a, at=start + timedelta(days=1)) == {"sent": 0, "failed": 0, "retrying": 0}


@pytest.mark.django_db
def test_twilio_failing_is_retried_and_the_retry_sends(twilio, tenant_a, owner_a):
    twilio.expect_ordered_request(fake.messages_path(), method="POST").respond_with_response(
        Response("<html>upstream</html>", 500)
    )
    twilio.expect_ordered_request(fake.messages_path(), method="POST").respond_with_handler(fake.message_created)
    _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id)
    start = timezone.now()
    assert _sweep(tenant_a, at=start)["retrying"] == 1
    [delivery] = _deliveries(tenant_a)
    assert delivery.last_error.startswith("INTEGRATION_UNREACHABLE")
    assert _sweep(tenant_a, at=start + timedelta(minutes=5))["sent"] == 1
    [delivery] = _deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("SENT", 2, "")


@pytest.mark.django_db
def test_an_email_alert_goes_through_djangos_mail_backend(tenant_a, owner_a, mailoutbox, settings):
    settings.DEFAULT_FROM_EMAIL = "alerts@ops.example.com"
    _recipient(tenant_a, owner_a, name="desk", channel="email", address="desk@example.com")
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id, bot_id=7, reason="drawdown")
    assert _sweep(tenant_a)["sent"] == 1
    [mail] = mailoutbox
    assert mail.to == ["desk@example.com"] and mail.from_email == "alerts@ops.example.com"
    assert mail.subject == "[CRITICAL] bot 7 killed"
    assert "reason: drawdown" in mail.body and "bot: 7" in mail.body
    [delivery] = _deliveries(tenant_a)
    assert delivery.status == "SENT" and delivery.provider_message_id == mail.extra_headers["Message-ID"]


@pytest.mark.django_db
def test_sms_without_twilio_keys_fails_visibly_not_silently(tenant_a, owner_a, settings):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 1
    _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id)
    assert _sweep(tenant_a)["failed"] == 1
    [delivery] = _deliveries(tenant_a)
    assert delivery.status == "FAILED" and delivery.last_error.startswith("INTEGRATION_KEY_MISSING")


@pytest.mark.django_db
def test_removing_a_recipient_stops_what_was_still_on_its_way(tenant_a, owner_a, mailoutbox):
    desk = _recipient(tenant_a, owner_a, name="desk", channel="email", address="desk@example.com")
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id)
    with tenancy.tenant_context(tenant_a.id, user_id=owner_a.id):
        alerting.recipient_delete(recipient_id=desk.id, actor=owner_a)
    assert _sweep(tenant_a) == {"sent": 0, "failed": 0, "retrying": 0} and mailoutbox == []
    [delivery] = _deliveries(tenant_a)
    assert (delivery.status, delivery.recipient_id, delivery.address) == ("FAILED", None, "desk@example.com")
    assert "recipient deleted" in delivery.last_error


# --- the API -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_owners_manage_recipients_through_audited_writes(api_owner_a, tenant_a):
    created = api_owner_a.post(
        "/api/tenant/alert-recipients",
        {"name": "on call", "channel": "sms", "address": PHONE, "min_severity": "warning"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["channel"], body["address"], body["min_severity"], body["active"]) == ("sms", PHONE, "warning", True)
    assert body["created_by"] == "owner-a"
    rid = body["id"]
    assert [r["id"] for r in api_owner_a.get("/api/tenant/alert-recipients").json()["results"]] == [rid]

    patched = api_owner_a.patch(f"/api/tenant/alert-recipients/{rid}", {"active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert patched.json()["min_severity"] == "warning"  # untouched fields stay as they were
    assert api_owner_a.get(f"/api/tenant/alert-recipients/{rid}").json()["active"] is False
    assert api_owner_a.delete(f"/api/tenant/alert-recipients/{rid}").status_code == 204
    assert api_owner_a.get(f"/api/tenant/alert-recipients/{rid}").status_code == 404

    actions = _in(tenant_a, lambda: list(AuditEvent.objects.filter(resource_type="alert_recipient").order_by("id")))
    assert [e.action for e in actions] == ["alert_recipient.create", "alert_recipient.update", "alert_recipient.delete"]
    assert actions[1].before_state["active"] is True and actions[1].after_state["active"] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "x", "channel": "sms", "address": "555-1234"}, "address"),
        ({"name": "x", "channel": "sms", "address": "+0123456789"}, "address"),
        ({"name": "x", "channel": "email", "address": "not-an-email"}, "address"),
        ({"name": "x", "channel": "pager", "address": PHONE}, "channel"),
        ({"name": "x", "channel": "sms", "address": PHONE, "min_severity": "loud"}, "min_severity"),
        ({"channel": "sms", "address": PHONE}, "name"),
    ],
)
def test_a_bad_recipient_is_refused_naming_the_field(api_owner_a, body, field):
    response = api_owner_a.post("/api/tenant/alert-recipients", body, format="json")
    assert response.status_code == 400 and response.json()["error_code"] == "VALIDATION_ERROR"
    assert list(response.json()["details"]) == [field]


@pytest.mark.django_db
def test_the_same_address_twice_is_refused_on_the_address(api_owner_a):
    body = {"name": "x", "channel": "email", "address": "desk@example.com"}
    assert api_owner_a.post("/api/tenant/alert-recipients", body, format="json").status_code == 201
    again = api_owner_a.post("/api/tenant/alert-recipients", body, format="json")
    assert again.status_code == 400 and list(again.json()["details"]) == ["address"]


@pytest.mark.django_db
def test_a_patch_to_a_bad_address_changes_nothing(api_owner_a):
    rid = api_owner_a.post(
        "/api/tenant/alert-recipients", {"name": "x", "channel": "sms", "address": PHONE}, format="json"
    ).json()["id"]
    response = api_owner_a.patch(f"/api/tenant/alert-recipients/{rid}", {"channel": "email"}, format="json")
    assert response.status_code == 400 and list(response.json()["details"]) == ["address"]
    assert api_owner_a.get(f"/api/tenant/alert-recipients/{rid}").json()["channel"] == "sms"


@pytest.mark.django_db
def test_only_owners_see_and_change_recipients(
    api_owner_a, api_operator_a, api_viewer_a, api_owner_b, tenant_a, owner_a
):
    recipient = _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)
    for client in (api_operator_a, api_viewer_a):
        assert client.get("/api/tenant/alert-recipients").status_code == 403
        post = client.post("/api/tenant/alert-recipients", {"name": "x", "channel": "sms", "address": PHONE})
        assert post.status_code == 403 and post.json()["error_code"] == "PERMISSION_DENIED"
        assert client.patch(f"/api/tenant/alert-recipients/{recipient.id}", {"active": False}).status_code == 403
        assert client.delete(f"/api/tenant/alert-recipients/{recipient.id}").status_code == 403
        assert client.post(f"/api/tenant/alert-recipients/{recipient.id}/test").status_code == 403
    # Another tenant's owner finds nothing of tenant A's.
    assert api_owner_b.get("/api/tenant/alert-recipients").json()["results"] == []
    assert api_owner_b.get(f"/api/tenant/alert-recipients/{recipient.id}").status_code == 404
    assert api_owner_b.post(f"/api/tenant/alert-recipients/{recipient.id}/test").status_code == 404
    assert _in(tenant_a, lambda: AlertRecipient.objects.get(pk=recipient.id).active) is True


@pytest.mark.django_db
def test_the_test_endpoint_sends_to_that_recipient_and_answers_the_delivery(twilio, api_owner_a, tenant_a, owner_a):
    fake.serve_messages(twilio)
    on_call = _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE, min_severity="critical")
    _recipient(tenant_a, owner_a, name="desk", channel="email", address="desk@example.com", min_severity="info")
    response = api_owner_a.post(f"/api/tenant/alert-recipients/{on_call.id}/test")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["recipient"], body["status"], body["attempts"]) == (on_call.id, "SENT", 1)
    assert body["provider_message_id"].startswith("SM")
    [sent] = fake.sent_messages(twilio)
    assert sent["To"] == PHONE and "Test alert" in sent["Body"]
    assert len(_deliveries(tenant_a)) == 1  # nobody else was told


@pytest.mark.django_db
def test_a_failed_test_answers_the_error_and_stays_for_its_retry(twilio, api_owner_a, tenant_a, owner_a):
    twilio.expect_request(fake.messages_path(), method="POST").respond_with_response(
        fake.error(400, 21211, "The 'To' number is not a valid phone number.")
    )
    on_call = _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)
    body = api_owner_a.post(f"/api/tenant/alert-recipients/{on_call.id}/test").json()
    assert body["status"] == "PENDING" and body["attempts"] == 1 and "21211" in body["last_error"]
    assert body["next_attempt_at"]


@pytest.mark.django_db
def test_alert_history_lists_alerts_with_their_deliveries_for_every_member(
    api_viewer_a, api_owner_b, tenant_a, owner_a
):
    _recipient(tenant_a, owner_a, name="desk", channel="email", address="desk@example.com", min_severity="info")
    alert(event="data.stale", message="stale", tenant_id=tenant_a.id, severity="info")
    alert(event="bot.killed", message="killed", tenant_id=tenant_a.id, bot_id=7)
    alert(event="bot.killed", message="killed", tenant_id=tenant_a.id, bot_id=7)
    page = api_viewer_a.get("/api/alerts").json()
    assert page["count"] == 2
    newest = page["results"][0]
    assert (newest["event"], newest["severity"], newest["suppressed_count"], newest["bot_id"]) == (
        "bot.killed",
        "critical",
        1,
        7,
    )
    assert [(d["channel"], d["status"]) for d in newest["deliveries"]] == [("email", "PENDING")]
    assert newest["reached"] == "pending"
    assert api_viewer_a.get("/api/alerts", {"reached": "nobody"}).json()["results"] == []
    assert api_viewer_a.get("/api/alerts", {"reached": "everyone"}).status_code == 400
    critical = api_viewer_a.get("/api/alerts", {"severity": "critical"}).json()
    assert [a["event"] for a in critical["results"]] == ["bot.killed"]
    assert api_viewer_a.get("/api/alerts", {"limit": 1}).json()["results"][0]["event"] == "bot.killed"
    assert api_owner_b.get("/api/alerts").json()["count"] == 0


# --- the console ---------------------------------------------------------------------------------------------------


def _console(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_console_and_the_api_show_which_alerts_reached_nobody(tenant_a, owner_a, api_viewer_a, settings):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 1
    _recipient(tenant_a, owner_a, name="on call", channel="sms", address=PHONE)  # no Twilio keys: it will fail
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant_a.id)
    alert(event="data.stale", message="bars stale", tenant_id=tenant_a.id, severity="info")  # nobody hears info
    _sweep(tenant_a)
    client = _console(owner_a)
    page = client.get("/admin/controlplane/alert/").content.decode()
    assert "bot 7 killed" in page and "NOBODY: 1 failed" in page and "NOBODY: no recipient" in page
    nobody = client.get("/admin/controlplane/alert/", {"reached": "nobody"}).content.decode()
    assert "bot 7 killed" in nobody
    critical = client.get("/admin/controlplane/alert/", {"severity__exact": "critical"}).content.decode()
    assert "bot 7 killed" in critical and "bars stale" not in critical
    failed = client.get("/admin/controlplane/alertdelivery/", {"status__exact": "FAILED"}).content.decode()
    assert "INTEGRATION_KEY_MISSING" in failed
    row = _in(tenant_a, lambda: Alert.objects.get(event="bot.killed"))
    detail = client.get(f"/admin/controlplane/alert/{row.id}/change/").content.decode()
    assert "INTEGRATION_KEY_MISSING" in detail and PHONE in detail
    nobody = api_viewer_a.get("/api/alerts", {"reached": "nobody"}).json()["results"]
    assert [(a["event"], a["reached"]) for a in nobody] == [("data.stale", "nobody"), ("bot.killed", "nobody")]


@pytest.mark.django_db
def test_owners_edit_recipients_in_the_console_and_others_only_read(tenant_a, owner_a, operator_a):
    device = enrol_totp(owner_a)
    owner = console_client(owner_a)
    assert owner.get("/admin/controlplane/alertrecipient/add/").status_code == 200
    values = {"name": "on call", "channel": "sms", "address": "555", "min_severity": "critical", "active": "on"}
    refused = owner.post("/admin/controlplane/alertrecipient/add/", values)
    assert refused.status_code == 200 and "E.164" in refused.content.decode()
    no_code = owner.post("/admin/controlplane/alertrecipient/add/", {**values, "address": PHONE})
    assert no_code.status_code == 200 and "needs a second factor" in no_code.content.decode()
    assert not _in(tenant_a, lambda: AlertRecipient.objects.exists())
    saved = owner.post(
        "/admin/controlplane/alertrecipient/add/", {**values, "address": PHONE, "otp_token": totp_code(device)}
    )
    assert saved.status_code == 302
    recipient = _in(tenant_a, lambda: AlertRecipient.objects.get())
    assert recipient.address == PHONE and recipient.created_by_id == owner_a.id
    audit = _in(tenant_a, lambda: AuditEvent.objects.filter(action="alert_recipient.create").count())
    assert audit == 1

    operator = _console(operator_a)
    assert operator.get("/admin/controlplane/alertrecipient/").status_code == 200
    assert operator.get("/admin/controlplane/alertrecipient/add/").status_code == 403
    changed = operator.post(
        f"/admin/controlplane/alertrecipient/{recipient.id}/change/",
        {"name": "hijack", "channel": "sms", "address": "+15550000000", "min_severity": "info"},
    )
    assert changed.status_code == 403
    assert _in(tenant_a, lambda: AlertRecipient.objects.get().name) == "on call"


# --- end to end: a real worker sends what the commit queued --------------------------------------------------------


@pytest.fixture
def alerts_worker(committed_db, httpserver, tmp_path):
    """A real Celery worker on the default queue (where the outbox sends deliveries), pointed at the local Twilio."""
    import redis
    from django.conf import settings as django_settings

    from tests.processes import BIN, env_for_test_database, forget_queue, start, stop

    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    forget_queue(broker, "default")  # nothing another test of this run left behind
    env = {**env_for_test_database(), "INTEGRATION_BASE_URLS": f"twilio={httpserver.url_for('').rstrip('/')}"}
    command = [str(BIN / "celery"), "-A", "controlplane", "worker", "-Q", "default", "--pool", "solo", "-l", "INFO"]
    process = start([*command, "-n", f"alerts-{timezone.now().timestamp():.0f}@%h"], env, tmp_path / "worker.log")
    yield httpserver
    stop(process)
    forget_queue(broker, "default")
    broker.close()
    print((tmp_path / "worker.log").read_text()[-3000:])


@pytest.mark.slow
def test_a_committed_alert_reaches_the_phone_through_a_real_worker(alerts_worker):
    from tests.factories import UserFactory
    from tests.processes import wait_for

    fake.serve_messages(alerts_worker)
    tenant, owner = TenantFactory(slug="alert-e2e"), UserFactory(username="alert-e2e-owner")
    with tenancy.tenant_context(tenant.id, user_id=owner.id):
        integration_services.credentials_set(provider="twilio", values=fake.CREDENTIALS, actor=owner)
        alerting.recipient_create(name="on call", channel="sms", address=PHONE, actor=owner)
    alert(event="bot.killed", message="bot 7 killed", tenant_id=tenant.id, bot_id=7)

    def sent():
        with tenancy.tenant_context(tenant.id), transaction.atomic():
            return AlertDelivery.objects.filter(status="SENT").first()

    delivery = wait_for(sent, timeout=60, what="the worker to send the delivery")
    assert delivery.attempts == 1 and delivery.provider_message_id.startswith("SM")
    [message] = fake.sent_messages(alerts_worker)
    assert message["To"] == PHONE and "bot 7 killed" in message["Body"]
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        assert OutboxMessage.objects.get().sent_at is not None  # sent by the commit hook, not left to the relay
