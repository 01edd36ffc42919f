"""Tasks published by a request: refused up front when the broker is unreachable, sent once the row is committed.

Why check before the commit and send after it, rather than send before the commit and fail the request: a task sent
before the commit can reach a worker before the row it names is visible; the worker finds nothing (a missing row is
a no-op) and the work is stranded as surely as if it had never been sent. Sending on commit keeps the row visible to
the worker; checking the broker inside the transaction first lets an unreachable broker refuse the request with 503
``SERVICE_UNAVAILABLE`` and roll it back, instead of committing a row whose task cannot be sent. What is left is the
window between the check and the send: a send that fails there is logged with what it was for, never raised (the
row is committed: an error answer would tell a client to retry and duplicate it), and the row stays QUEUED for the
sweep of stranded work. A transactional outbox would close that window by replacing the body of
``publish_on_commit``, not its callers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

from controlplane import redis_clients
from controlplane.errors import ControlPlaneError, ErrorCode

logger = logging.getLogger(__name__)


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


def require_broker() -> None:
    """503 ``SERVICE_UNAVAILABLE`` unless the broker answers a PING within ``REDIS_TIMEOUT_SECONDS``."""
    url = settings.CELERY_BROKER_URL
    if not _is_redis(url):
        return  # another transport: its own options bound the publish
    connection = redis_clients.client(url)
    try:
        connection.ping()
    except redis.RedisError as exc:
        raise ControlPlaneError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "The task queue (Redis) is unreachable: this work cannot be queued, so nothing was saved.",
            details={"component": "redis"}) from exc
    finally:
        connection.close()


def publish_on_commit(send: Callable[[], object], *, what: str, required: bool = True) -> None:
    """Run ``send`` (one or more ``apply_async``) after the current transaction commits.

    ``required``: the work exists only as this task (a job, a matrix chunk, a replay), so an unreachable broker
    refuses the request now, before the commit. Not required: something else picks the work up later (PENDING
    intents are swept by the OMS recovery), so the request goes on, and while the broker is known to be down the
    send is skipped rather than waited for.
    """
    url = settings.CELERY_BROKER_URL
    if required:
        require_broker()

    def guarded() -> None:
        if not required and _is_redis(url) and redis_clients.known_down(url):
            logger.warning("broker unreachable moments ago: not published", extra={"what": what})
            return
        try:
            send()
        except (OperationalError, redis.RedisError, OSError) as exc:
            if _is_redis(url):
                redis_clients.remember_failure(url, exc)
            logger.exception("could not publish after commit: the work waits for the sweep", extra={"what": what})
        except Exception:
            logger.exception("could not publish after commit: the work waits for the sweep", extra={"what": what})

    transaction.on_commit(guarded)
