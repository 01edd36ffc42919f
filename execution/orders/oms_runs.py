"""Asking for an OMS run of a tenant: at most one run waits in the queue per tenant, however many intents ask.

Every intent submitted through the API asks for an OMS run once it commits. Sending one task per intent fills
the ``oms`` queue with runs that mostly find nothing left to claim (the first one took the whole batch) and that
each cost a worker a task start: under a burst the queue, not the OMS, sets the latency. So a request sets a flag
in the broker's Redis (``SET NX`` with a time to live) and sends the task only if the flag was not set already; the
task clears the flag when it starts, before it claims anything. An intent committed before that clear is seen by
the claim that follows it; one committed after it sets the flag again and sends a new run. A run that claimed its
whole ``limit`` asks for the next one itself, and so does a run whose claim came back full, as soon as that batch
is committed: an idle worker takes the next batch while this one sends (``execution.orders.tasks.oms_process``).

A run stops after a claim that came back short (``process_pending_intents``), and no intent is stranded by that:
an intent committed before the short claim's statement began is in its snapshot and is claimed by it, unless
another run's claim held it (SKIP LOCKED), in which case that run sends it, or claims it again after rolling back
to re-check under the tenant's lock; an intent committed after the claim began committed after this run cleared
the flag (cleared before the run's first claim), so its own request sets the flag again and sends a new run, or
finds it set by a request that itself came after the clear and sent one. What is left is an intent that another
run's claim held and then released PENDING because that run failed: its run request was already spent, and beat's
PENDING sweep below finds it, as it finds one whose request was lost.

Nothing depends on the flag for safety: if a task is lost (broker flushed, message dropped), the flag expires
after ``OMS_RUN_REQUEST_TTL_SECONDS`` and beat's PENDING sweep (``execution.orders.tasks.oms_sweep_pending``)
asks for a run of every tenant with PENDING intents every ``OMS_PENDING_SWEEP_SECONDS``: no intent is stranded.
With Redis unreachable, nothing is sent (the broker is the same server) and the sweep does it later.
"""

from __future__ import annotations

import logging
import os
import threading

import redis
from django.conf import settings

from controlplane import redis_clients

logger = logging.getLogger(__name__)

_clients: dict[tuple[str, int], redis.Redis] = {}
_clients_lock = threading.Lock()


def _broker_redis() -> redis.Redis:
    """One bounded client per broker URL and process (a connection pool is not shared across a fork)."""
    key = (settings.CELERY_BROKER_URL, os.getpid())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = redis_clients.client(settings.CELERY_BROKER_URL)
        return client


def request_flag(tenant_id: int) -> str:
    return f"oms:run-requested:{tenant_id}"


def request_oms_run(tenant_id: int) -> bool:
    """Send ``execution.oms_process`` for the tenant unless a run is already waiting; True when one was sent.

    Sent by name: the OMS task (``execution.orders.tasks``) builds on intents, so intents never import it; the
    name's routing (``CELERY_TASK_ROUTES``) puts it on the oms queue, as ``delay`` would."""
    from celery import current_app

    client = _broker_redis()
    flag = request_flag(tenant_id)
    if not client.set(flag, "1", nx=True, ex=settings.OMS_RUN_REQUEST_TTL_SECONDS):
        return False
    try:
        # ignore_result: a send by name does not know the task ignores its result, and would otherwise subscribe
        # to the result's channel on the result backend (one more round trip, and a subscription never released).
        current_app.send_task("execution.oms_process", kwargs={"tenant_id": tenant_id}, ignore_result=True)
    except BaseException:
        _clear(client, flag)  # nothing waits: let the next request send
        raise
    return True


def oms_run_started(tenant_id: int) -> None:
    """Called by the OMS task before it claims: requests from now on send a new run. Best effort: a flag left
    set only delays the next run until it expires (or the sweep)."""
    _clear(_broker_redis(), request_flag(tenant_id))


def _clear(client: redis.Redis, flag: str) -> None:
    try:
        client.delete(flag)
    except redis.RedisError:
        logger.warning("could not clear the OMS run request flag; it expires on its own", extra={"flag": flag})
