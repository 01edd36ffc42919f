"""The transactional outbox: a task is a row written with the work it dispatches, and sent after the commit.

Why: a task sent before the commit can reach a worker before its row is visible; a task sent after it can be lost
if the broker is down or the send fails, and the committed row is stranded. So ``outbox_publish`` writes an
``OutboxMessage`` in the caller's transaction (the row and its dispatch record commit together, or neither does),
and on commit tries to send it at once. Whatever that misses (broker down, a send that raised, a process that died
in between) the relay, a beat task every ``OUTBOX_RELAY_INTERVAL_SECONDS``, sends again with backoff until the broker
acknowledges. A request is never refused because the broker is down: the work is accepted and queued here.

One sender at a time per row: both the commit hook and the relay claim rows with ``SELECT ... FOR UPDATE SKIP
LOCKED`` and mark them sent in the same transaction as the send, so two relays (or a relay and a commit hook) never
send one row twice. What remains is at-least-once: a process killed after the broker took the message and before
its commit leaves the row unsent, and it is sent again; every task published this way is safe to run twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from controlplane import redis_clients, tenancy
from controlplane.celery import TRACE_HEADER
from controlplane.models import OutboxMessage
from controlplane.trace import current_trace_id
from controlplane.selectors import all_tenant_ids

logger = logging.getLogger(__name__)


def outbox_publish(
    *,
    task: str,
    kwargs: dict,
    queue: str = "",
    what: str = "",
    task_id: str | None = None,
    tenant_id: int | None = None,
) -> OutboxMessage:
    """Record ``task`` for sending in the current transaction; try to send it once that transaction commits."""
    options = {"task_id": task_id} if task_id else {}
    message = OutboxMessage.objects.create(
        tenant_id=tenant_id or tenancy.require_tenant_id(),
        task=task,
        kwargs=kwargs,
        queue=queue,
        options=options,
        what=what,
        trace_id=current_trace_id() or "",
    )
    message_id, message_tenant = message.id, message.tenant_id

    def send_now() -> None:
        url = settings.CELERY_BROKER_URL
        if redis_clients.known_down(url):
            logger.warning("broker unreachable moments ago: left to the outbox relay", extra={"what": what})
            return
        try:
            with tenancy.tenant_context(message_tenant):
                relay_messages(ids=[message_id])
        except Exception:  # the commit happened: the relay sends it; never turn a saved request into an error
            logger.exception("could not send after commit: left to the outbox relay", extra={"what": what})

    transaction.on_commit(send_now)
    return message


def _send(message: OutboxMessage, connection) -> None:
    from controlplane.celery import app

    options = dict(message.options)
    if message.queue:
        options["queue"] = message.queue
    if message.trace_id:
        options["headers"] = {TRACE_HEADER: message.trace_id}
    app.send_task(message.task, args=message.args, kwargs=message.kwargs, connection=connection, **options)


def _backoff(attempts: int) -> timedelta:
    base = settings.OUTBOX_RELAY_INTERVAL_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), settings.OUTBOX_MAX_BACKOFF_SECONDS))


def relay_messages(
    *, ids: list[int] | None = None, now: datetime | None = None, limit: int | None = None
) -> dict[str, int]:
    """Send the tenant in context's unsent messages that are due (or the ones named by ``ids``, due or not).

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and marked sent in the transaction that sent them; a row another
    sender holds is skipped. The first broker failure ends the batch (the rest would only wait for the same
    timeout): that row gets its attempt counted and a later ``next_attempt_at``."""
    from controlplane.celery import app

    now = now or timezone.now()
    counts = {"sent": 0, "failed": 0}
    with transaction.atomic():
        unsent = OutboxMessage.objects.select_for_update(skip_locked=True).filter(sent_at__isnull=True)
        if ids is not None:
            unsent = unsent.filter(pk__in=ids)
        else:
            unsent = unsent.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        claimed = list(unsent.order_by("id")[: limit or settings.OUTBOX_RELAY_BATCH])
        if not claimed:
            return counts
        url = settings.CELERY_BROKER_URL
        with app.connection_for_write(url) as connection:
            for message in claimed:
                try:
                    _send(message, connection)
                except Exception as exc:
                    redis_clients.remember_failure(url, exc)
                    message.attempts += 1
                    message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    message.next_attempt_at = timezone.now() + _backoff(message.attempts)
                    message.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                    counts["failed"] += 1
                    logger.warning(
                        "outbox send failed; retried later", extra={"what": message.what, "attempts": message.attempts}
                    )
                    break
                message.attempts += 1
                message.sent_at = timezone.now()
                message.save(update_fields=["attempts", "sent_at"])
                counts["sent"] += 1
    return counts


def relay_outbox(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """The relay over every tenant, one tenant context at a time (RLS shows each only its own rows). A send that
    fails ends the run: the broker is down for the tenants after it too, and each would only wait for its timeout."""
    results = {}
    for tenant_id in all_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            try:
                counts = relay_messages(now=now)
            except Exception:
                logger.exception("outbox relay failed for a tenant", extra={"tenant_id": tenant_id})
                continue
        if counts["sent"] or counts["failed"]:
            results[tenant_id] = counts
        if counts["failed"]:
            break
    return results
