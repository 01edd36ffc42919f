"""Alert recipients (owners' writes, each one audited service) and the delivery of alerts to them.

A delivery is sent by the task its alert queued (through the outbox, after commit) and, when that send fails or
the task was lost, by the beat sweep (:func:`deliver_due_all_tenants`). Each send claims its row with ``FOR UPDATE
SKIP LOCKED`` and holds it until the outcome is written, so a task and a sweep never send one delivery twice (a
process killed between the provider's answer and the commit leaves it PENDING: it is sent again, at least once). A
failure is counted on the row (``attempts``, ``last_error``) and retried after a doubling wait; after
``ALERT_DELIVERY_MAX_ATTEMPTS`` the delivery is FAILED, logged at ERROR and shown as such in the console: an alert
nobody received is never silently dropped.

SMS leaves through the declared hook ``sms.send`` (integrations' Twilio client, with the tenant's keys); e-mail
through Django's mail backend.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane import hooks, tenancy
from controlplane.alerts import delivery_enqueue
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Alert, AlertDelivery, AlertRecipient, Severity
from controlplane.selectors import all_tenant_ids
from controlplane.services import audit_record
from controlplane.trace import current_trace_id

logger = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
SMS_MAX_CHARS = 640  # four concatenated segments; Twilio itself refuses bodies over 1,600
RECIPIENT_FIELDS = ("name", "channel", "address", "min_severity", "active")


# --- recipients --------------------------------------------------------------------------------------------------


def validated_address(channel: str, address: str) -> str:
    """The address, trimmed, if it is one the channel can reach; a field error on ``address`` otherwise."""
    address = address.strip()
    if channel == AlertRecipient.Channel.SMS:
        if not E164.match(address):
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR,
                details={"address": ["An SMS recipient needs a phone number in E.164 form, e.g. +15551234567."]},
            )
        return address
    if channel == AlertRecipient.Channel.EMAIL:
        try:
            validate_email(address)
        except ValidationError:
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR, details={"address": ["Enter a valid e-mail address."]}
            ) from None
        return address
    raise ControlPlaneError(
        ErrorCode.VALIDATION_ERROR, details={"channel": [f"One of: {', '.join(AlertRecipient.Channel.values)}."]}
    )


def _snapshot(recipient: AlertRecipient) -> dict:
    return {name: getattr(recipient, name) for name in RECIPIENT_FIELDS}


def _save(recipient: AlertRecipient) -> None:
    try:
        with transaction.atomic():
            recipient.save()
    except IntegrityError:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            details={"address": [f"This tenant already has a {recipient.channel} recipient at this address."]},
        ) from None


def recipient_create(
    *, name: str, channel: str, address: str, min_severity: str = Severity.CRITICAL, active: bool = True, actor
) -> AlertRecipient:
    """An owner adds someone to be told of the tenant's alerts from ``min_severity`` up."""
    with transaction.atomic():
        recipient = AlertRecipient(
            tenant_id=tenancy.require_tenant_id(),
            name=name.strip(),
            channel=channel,
            address=validated_address(channel, address),
            min_severity=Severity(min_severity),
            active=active,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        _save(recipient)
        audit_record(
            action="alert_recipient.create",
            resource_type="alert_recipient",
            resource_id=recipient.id,
            actor=actor,
            after=_snapshot(recipient),
        )
    return recipient


def _locked_recipient(recipient_id: int) -> AlertRecipient:
    recipient = AlertRecipient.objects.select_for_update().filter(id=recipient_id).first()
    if recipient is None:
        raise ControlPlaneError(ErrorCode.NOT_FOUND, "No alert recipient of this tenant has this id.")
    return recipient


def recipient_update(*, recipient_id: int, changes: dict, actor) -> AlertRecipient:
    """An owner changes a recipient (any of name, channel, address, min_severity, active)."""
    with transaction.atomic():
        recipient = _locked_recipient(recipient_id)
        before = _snapshot(recipient)
        for name, value in changes.items():
            if name not in RECIPIENT_FIELDS:
                raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={name: ["This field cannot be changed."]})
            setattr(recipient, name, value.strip() if isinstance(value, str) else value)
        recipient.min_severity = Severity(recipient.min_severity)
        recipient.address = validated_address(recipient.channel, recipient.address)
        _save(recipient)
        audit_record(
            action="alert_recipient.update",
            resource_type="alert_recipient",
            resource_id=recipient.id,
            actor=actor,
            before=before,
            after=_snapshot(recipient),
        )
    return recipient


def recipient_delete(*, recipient_id: int, actor) -> None:
    """An owner removes a recipient; what was still on its way to them is not sent (FAILED, saying why), and the
    history keeps where earlier alerts went."""
    with transaction.atomic():
        recipient = _locked_recipient(recipient_id)
        before = _snapshot(recipient)
        cancelled = AlertDelivery.objects.filter(recipient=recipient, status=AlertDelivery.Status.PENDING).update(
            status=AlertDelivery.Status.FAILED, next_attempt_at=None, last_error="recipient deleted before sending"
        )
        recipient.delete()
        audit_record(
            action="alert_recipient.delete",
            resource_type="alert_recipient",
            resource_id=recipient_id,
            actor=actor,
            before={**before, "pending_deliveries_cancelled": cancelled},
        )


def recipient_test(*, recipient_id: int, actor) -> AlertDelivery:
    """Send a test alert to this one recipient now (whatever its minimum severity, and outside the dedup window);
    the delivery as it stands after the first attempt (a failed one is retried like any other)."""
    with transaction.atomic():
        recipient = _locked_recipient(recipient_id)
        row = Alert.objects.create(
            tenant_id=recipient.tenant_id,
            event="alert.test",
            key=f"alert.test:{recipient.id}:{uuid.uuid4().hex}",
            severity=Severity.INFO,
            message=f"Test alert for {recipient.name}, requested by {getattr(actor, 'username', 'system')}.",
            fields={"recipient_id": recipient.id},
            trace_id=current_trace_id() or "",
            created_at=timezone.now(),
        )
        delivery = delivery_enqueue(alert=row, recipient=recipient)
        audit_record(
            action="alert_recipient.test",
            resource_type="alert_recipient",
            resource_id=recipient.id,
            actor=actor,
            after={"alert_id": row.id, "delivery_id": delivery.id},
        )
    return delivery_attempt(delivery_id=delivery.id) or AlertDelivery.objects.get(pk=delivery.id)


# --- delivery ----------------------------------------------------------------------------------------------------


def _backoff(attempts: int) -> timedelta:
    seconds = settings.ALERT_DELIVERY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.ALERT_DELIVERY_MAX_BACKOFF_SECONDS))


def _sms_body(alert: Alert) -> str:
    body = f"[{alert.severity.upper()}] {alert.message} ({alert.event}, trace {alert.trace_id or '-'})"
    return body if len(body) <= SMS_MAX_CHARS else body[: SMS_MAX_CHARS - 1] + "…"


def _send_email(delivery: AlertDelivery) -> str:
    alert = delivery.alert
    message_id = make_msgid(domain=settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or None)
    lines = [alert.message, "", f"event: {alert.event}", f"severity: {alert.severity}", f"at: {alert.created_at}"]
    if alert.bot_id:
        lines.append(f"bot: {alert.bot_id}")
    lines += [f"{name}: {value}" for name, value in sorted(alert.fields.items())]
    lines.append(f"trace id: {alert.trace_id or '-'}")
    EmailMessage(
        subject=f"[{alert.severity.upper()}] {alert.message}"[:200],
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.address],
        headers={"Message-ID": message_id},
    ).send(fail_silently=False)
    return message_id


def _send(delivery: AlertDelivery) -> str:
    """Send one delivery; the provider's id of what it sent. Raises whatever the channel raised."""
    if delivery.channel == AlertRecipient.Channel.SMS:
        return hooks.hook("sms.send")(tenant_id=delivery.tenant_id, to=delivery.address, body=_sms_body(delivery.alert))
    return _send_email(delivery)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ControlPlaneError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> AlertDelivery | None:
    """One send of a due PENDING delivery of the tenant in context; the delivery after it, or None when there was
    nothing to do (not due, already sent or failed, or another worker is sending it right now)."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            AlertDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("alert")
            .filter(pk=delivery_id, status=AlertDelivery.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        try:
            with transaction.atomic():  # a database error while sending leaves the outcome still writable
                provider_id = _send(delivery)
        except Exception as exc:
            delivery.last_error = _error_text(exc)[:2000]
            context = {
                "alert_event": delivery.alert.event,
                "alert_id": delivery.alert_id,
                "delivery_id": delivery.id,
                "channel": delivery.channel,
                "attempts": delivery.attempts,
                "error": delivery.last_error,
            }
            if delivery.attempts >= settings.ALERT_DELIVERY_MAX_ATTEMPTS:
                delivery.status, delivery.next_attempt_at = AlertDelivery.Status.FAILED, None
                logger.error("alert delivery failed for good: the recipient was not told", extra=context)
            else:
                delivery.next_attempt_at = now + _backoff(delivery.attempts)
                logger.warning("alert delivery failed; retried later", extra=context)
        else:
            delivery.status, delivery.sent_at, delivery.next_attempt_at = (
                AlertDelivery.Status.SENT,
                timezone.now(),
                None,
            )
            delivery.provider_message_id = str(provider_id or "")[:100]
            delivery.last_error = ""
        delivery.save(
            update_fields=["attempts", "status", "next_attempt_at", "last_error", "provider_message_id", "sent_at"]
        )
    return delivery


def deliver_due(*, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Send the tenant in context's due PENDING deliveries (retries, and any whose task never ran)."""
    now = now or timezone.now()
    due = AlertDelivery.objects.filter(status=AlertDelivery.Status.PENDING, next_attempt_at__lte=now)
    counts = {"sent": 0, "failed": 0, "retrying": 0}
    for delivery_id in list(due.order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit]):
        delivery = delivery_attempt(delivery_id=delivery_id, now=now)
        if delivery is None:
            continue
        outcome = {AlertDelivery.Status.SENT: "sent", AlertDelivery.Status.FAILED: "failed"}
        counts[outcome.get(delivery.status, "retrying")] += 1
    return counts


def deliver_due_all_tenants(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """The beat sweep over every tenant, one tenant context at a time (RLS shows each only its own rows)."""
    results = {}
    for tenant_id in all_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            try:
                counts = deliver_due(now=now)
            except Exception:
                logger.exception("alert delivery sweep failed for a tenant", extra={"tenant_id": tenant_id})
                continue
        if any(counts.values()):
            results[tenant_id] = counts
    return results
