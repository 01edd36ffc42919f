"""The one place alerts are raised: :func:`alert` writes the log line, the alert's history row and one delivery per
recipient who hears it; delivering them (SMS, e-mail, retries) is ``controlplane.alerting``'s.

Why the log line comes first and always: it is the one channel that needs nothing else to work (a log pipeline can
page on it), so an alert whose row cannot be written, or a platform alert, still leaves a trace. Severity picks its
level: ``critical`` at ERROR (what pipelines page on, and what every caller before severities existed wrote),
``warning`` at WARNING, ``info`` at INFO.

Repeats are throttled per key (event, tenant and bot unless the caller names a key): within
``ALERT_DEDUP_WINDOW_SECONDS`` of an alert, the same key only increments that alert's ``suppressed_count``. Two
workers raising the same alert at once are serialized by a transaction-scoped advisory lock on the key, so they
produce one row and one set of deliveries, never two.

Platform alerts (no tenant) are the log line only: recipients belong to tenants, and a platform-wide page is the
log pipeline's job.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from controlplane import tenancy
from controlplane.models import Alert, AlertDelivery, AlertRecipient, Severity
from controlplane.outbox import outbox_publish
from controlplane.trace import current_trace_id

logger = logging.getLogger("controlplane.alerts")

LOG_LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.CRITICAL: logging.ERROR}
DELIVER_TASK = "controlplane.deliver_alert"


def alert(
    *,
    event: str,
    message: str,
    tenant_id: int | None = None,
    bot_id: int | None = None,
    severity: str = Severity.CRITICAL,
    key: str | None = None,
    **fields: Any,
) -> Alert | None:
    """Raise an operator alert; the alert's row (a repeat inside the window answers the earlier one), or None for a
    platform alert or when the row could not be written (the log line says so; an alert never raises).

    ``event`` is a stable machine name (``circuit_breaker.tripped``); ``fields`` are the values that explain it
    (JSON-able; names of ``logging.LogRecord`` attributes such as ``name`` or ``message`` are not allowed). Callers
    raise it after their own commit (``transaction.on_commit``), so an alert never announces a change that rolled
    back."""
    severity = _severity(severity)
    trace_id = current_trace_id()
    logger.log(
        LOG_LEVELS[severity],
        message,
        extra={
            "alert": event,
            "severity": str(severity),
            "tenant_id": tenant_id,
            "bot_id": bot_id,
            "trace_id": trace_id,
            **fields,
        },
    )
    if tenant_id is None:
        return None
    try:
        return _record(
            event=event,
            message=message,
            tenant_id=tenant_id,
            bot_id=bot_id,
            severity=severity,
            key=key or f"{event}:{tenant_id}:{bot_id or '-'}",
            fields=fields,
            trace_id=trace_id or "",
        )
    except Exception:
        logger.exception(
            "alert logged but not recorded: nobody else is told", extra={"alert_event": event, "tenant_id": tenant_id}
        )
        return None


def _severity(value: str) -> Severity:
    """An unknown severity ("error", a typo) is raised as critical: an alert heard by everyone rather than by no
    one, and never an exception in the caller's on-commit hook."""
    try:
        return Severity(str(value).lower())
    except ValueError:
        return Severity.CRITICAL


def _jsonable(fields: dict) -> dict:
    """The values as the log line shows them: decimals, dates and the like as their text."""
    return json.loads(json.dumps(fields, default=str))


def _record(
    *,
    event: str,
    message: str,
    tenant_id: int,
    bot_id: int | None,
    severity: Severity,
    key: str,
    fields: dict,
    trace_id: str,
) -> Alert:
    with tenancy.tenant_context(tenant_id), transaction.atomic():
        with connection.cursor() as cursor:  # held until commit: the next raiser of this key waits, then sees ours
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"cp:alert:{tenant_id}:{key}"])
        now = timezone.now()
        window = timedelta(seconds=settings.ALERT_DEDUP_WINDOW_SECONDS)
        recent = Alert.objects.filter(key=key, created_at__gt=now - window).order_by("-created_at").first()
        if recent is not None:
            Alert.objects.filter(pk=recent.pk).update(
                suppressed_count=F("suppressed_count") + 1, last_suppressed_at=now
            )
            recent.refresh_from_db()
            return recent
        row = Alert.objects.create(
            tenant_id=tenant_id,
            event=event,
            key=key,
            severity=severity,
            message=message,
            fields=_jsonable(fields),
            bot_id=bot_id,
            trace_id=trace_id,
            created_at=now,
        )
        for recipient in AlertRecipient.objects.filter(active=True).order_by("id"):
            if recipient.hears(severity):
                delivery_enqueue(alert=row, recipient=recipient)
        return row


def delivery_enqueue(*, alert: Alert, recipient: AlertRecipient) -> AlertDelivery:
    """A PENDING delivery of ``alert`` to ``recipient``, due now, and its task written to the outbox in the same
    transaction: committed means queued (the beat sweep also sends any due delivery a lost task left behind)."""
    delivery = AlertDelivery.objects.create(
        tenant_id=alert.tenant_id,
        alert=alert,
        recipient=recipient,
        channel=recipient.channel,
        address=recipient.address,
        next_attempt_at=timezone.now(),
    )
    outbox_publish(
        task=DELIVER_TASK,
        kwargs={"tenant_id": alert.tenant_id, "delivery_id": delivery.id},
        what=f"alert {alert.id} to {recipient.channel} recipient {recipient.id}",
        tenant_id=alert.tenant_id,
    )
    return delivery
