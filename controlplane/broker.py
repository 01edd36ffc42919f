"""Tasks whose loss nothing else repairs go through the outbox (controlplane/outbox.py); this is the other kind.

``publish_on_commit`` sends after the commit a task that something else picks up later if it is lost (PENDING
intents are swept by the OMS recovery): while the broker is known to be down the send is skipped rather than waited
for, and a send that fails is logged, never raised (the row is committed: an error answer would tell a client to
retry and duplicate it). Work that exists only as its task (a job, a matrix chunk, a replay) uses
``outbox.outbox_publish`` instead, so it is accepted and sent when the broker answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

from controlplane import redis_clients

logger = logging.getLogger(__name__)


def publish_on_commit(send: Callable[[], object], *, what: str) -> None:
    """Run ``send`` (one or more ``apply_async``) after the current transaction commits, best effort."""
    url = settings.CELERY_BROKER_URL

    def guarded() -> None:
        if redis_clients.known_down(url):
            logger.warning("broker unreachable moments ago: not published", extra={"what": what})
            return
        try:
            send()
        except (OperationalError, redis.RedisError, OSError) as exc:
            redis_clients.remember_failure(url, exc)
            logger.exception("could not publish after commit: the work waits for its sweep", extra={"what": what})
        except Exception:
            logger.exception("could not publish after commit: the work waits for its sweep", extra={"what": what})

    transaction.on_commit(guarded)
