"""Thin Celery tasks of the OMS: send a tenant's pending intents, and the recovery sweeps. Each is safe to run
twice (claims use SKIP LOCKED; recovery looks orders up, never re-sends)."""

from __future__ import annotations

import logging
import time

import redis
from celery import shared_task, signals
from django.conf import settings
from kombu.exceptions import OperationalError

from controlplane.celery import TenantTask, fan_out_per_tenant
from controlplane import tenancy
from controlplane.selectors import active_tenant_ids, all_tenant_ids
from execution.models import TradeIntent
from execution.orders import cancels, oms, recovery
from execution.orders.oms_runs import oms_run_started, request_oms_run

logger = logging.getLogger(__name__)


@shared_task(name="execution.oms_process", base=TenantTask, acks_late=True, ignore_result=True)
def oms_process(*, tenant_id: int, limit: int = 500) -> int:
    """Send the tenant's PENDING intents, and finish cancel requests whose hook did not run (claims use SKIP LOCKED;
    the cancel sweep at most every ``OMS_CANCEL_SWEEP_SECONDS``: :func:`_sweep_cancel_requests_before_claim`).

    The run request is cleared first, so an intent committed from now on asks for a run of its own. A run whose
    claim came back full asks for another run at once (an idle worker takes the next batch while this one sends
    its own), and a run that claimed its whole ``limit`` asks for the next one (more may be waiting)."""
    oms_run_started(tenant_id)
    _sweep_cancel_requests_before_claim(tenant_id)
    claimed = oms.process_pending_intents(limit=limit, on_full_batch=lambda: _ask_for_another_run(tenant_id))
    if claimed >= limit:
        _ask_for_another_run(tenant_id)
    return claimed


_last_sweep: dict[int, float] = {}  # tenant id -> monotonic time of this process's last sweep before a claim


def _sweep_cancel_requests_before_claim(tenant_id: int) -> int | None:
    """``cancels.process_pending_cancel_requests`` before an OMS run claims, at most once every
    ``OMS_CANCEL_SWEEP_SECONDS`` per worker process and tenant (0: before every claim); None when skipped.

    The sweep only finds requests whose hook failed (a kill's hook runs right after its commit). It cost an OMS run
    a transaction of its own (four round trips) before every claim, on the path of every intent's latency, to find
    nothing. Skipping it for a moment changes no refusal: the kill switches are committed with the request, and the
    claim's re-check reads them. Beat's recovery sweep (:func:`oms_recover`) runs it too, so a failed hook is
    carried out with no OMS run at all."""
    now = time.monotonic()
    last = _last_sweep.get(tenant_id)
    if last is not None and now - last < settings.OMS_CANCEL_SWEEP_SECONDS:
        return None
    _last_sweep[tenant_id] = now
    return cancels.process_pending_cancel_requests()


def _ask_for_another_run(tenant_id: int) -> None:
    """Coalesced (``request_oms_run``); best effort: if the broker does not answer, the PENDING sweep asks again."""
    try:
        request_oms_run(tenant_id)
    except (redis.RedisError, OperationalError):
        logger.warning("could not ask for the next OMS run", extra={"tenant_id": tenant_id})


@shared_task(name="execution.oms_sweep_pending", ignore_result=True)
def oms_sweep_pending() -> list[int]:
    """Beat's safety net: ask for an OMS run (coalesced) of every active tenant that has PENDING intents, so an
    intent whose run request was lost (broker down at commit, message dropped) is sent at most one interval
    later. Suspended tenants send nothing new (``active_tenant_ids``). Returns the tenants asked for."""
    asked = []
    for tenant_id in active_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            pending = TradeIntent.objects.filter(status=TradeIntent.Status.PENDING).exists()
        if pending:
            request_oms_run(tenant_id)
            asked.append(tenant_id)
    return asked


@shared_task(name="execution.oms_recover_all_tenants", ignore_result=True)
def oms_recover_all_tenants() -> int:
    """Beat's entry point (and the worker's at start): one recovery sweep per tenant, on the oms queue. Suspended
    tenants too: an order sent but never recorded is looked up whatever became of its tenant."""
    return fan_out_per_tenant(
        oms_recover, tenant_ids=all_tenant_ids(), queue="oms", expires=settings.OMS_RECOVERY_INTERVAL_SECONDS * 0.9
    )


@shared_task(name="execution.oms_recover", base=TenantTask, acks_late=True)
def oms_recover(*, tenant_id: int) -> dict:
    """Resolve orders whose send was never recorded (looked up, never re-sent), record live fills, and carry out
    the cancel requests whose hook failed (the beat's sweep ``bots.services.kills`` counts on: with no intent to
    send, no OMS run would ever find them)."""
    return {
        "unacknowledged": recovery.resolve_unacknowledged_orders(),
        "fills": recovery.sync_live_fills(),
        "cancel_requests": cancels.process_pending_cancel_requests(),
    }


@signals.worker_ready.connect
def _recover_at_worker_start(sender=None, **_):
    """A worker that serves the oms queue starts with a recovery sweep: a crash of the previous one may have left
    orders sent but unrecorded. Only an enqueue here; the sweep runs as an ordinary task."""
    queues = getattr(getattr(sender, "app", None), "amqp", None)
    consuming = set(queues.queues.consume_from or {}) if queues is not None else set()
    if "oms" in consuming:
        oms_recover_all_tenants.apply_async(queue="oms", expires=settings.OMS_RECOVERY_INTERVAL_SECONDS)
