"""Job kinds and the handlers that run them. Apps register the handler of each kind they implement at start-up;
a kind with no handler is refused at creation (JOB_HANDLER_MISSING) rather than queued to fail later. The job
state changes (create, cancel, retry, the worker's claim-run-finish) are ``bots.services.jobs``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class JobHandler:
    kind: str
    # run(job) -> JSON-able result; raise ControlPlaneError for a failure with its code.
    run: Callable
    queue: str = "default"
    idempotent: bool = False  # safe to re-run after a lost worker (the watchdog re-queues it)
    needs_bot: bool = False


_handlers: dict[str, JobHandler] = {}


def register_job_handler(
    kind: str, run: Callable, *, queue: str = "default", idempotent: bool = False, needs_bot: bool = False
) -> None:
    _handlers[kind] = JobHandler(kind, run, queue, idempotent, needs_bot)


def job_handler(kind: str) -> JobHandler | None:
    return _handlers.get(kind)
