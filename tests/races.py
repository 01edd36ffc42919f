"""Real races for tests: ``n`` threads, each on its own database connection, run one function at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections


def race(n: int, fn: Callable[[], object]) -> list[Exception]:
    """Start ``n`` threads that wait for each other (a barrier), then each call ``fn`` once; returns what they
    raised once all have ended. Each thread closes its own database connections: none outlives it."""
    barrier, errors = threading.Barrier(n), []

    def run():
        try:
            barrier.wait()
            fn()
        except Exception as error:  # reported by the caller's assertion
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
