"""``collect_quotes [--once] [--rounds N]``: the quote collector process (execution.marketdata.quotes), started by
``make run`` beside the worker; in production, one per deployment (a second one only doubles the rows)."""

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from controlplane.errors import DATABASE_UNAVAILABLE_ERRORS
from execution.marketdata.quotes import QuoteCollector

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Poll the configured crypto venues' order books, funding and basis every ARB_QUOTE_POLL_SECONDS and write "
        "them in bulk, with a heartbeat system status reads. Stops cleanly on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One round, print what it collected, exit.")
        parser.add_argument("--rounds", type=int, default=0, help="Stop after this many rounds (0: run until told).")

    def handle(self, *args, once, rounds, verbosity, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        collector = QuoteCollector()
        logger.info(
            "quote collector started",
            extra={"hostname": collector.hostname, "poll_seconds": settings.ARB_QUOTE_POLL_SECONDS},
        )
        limit = 1 if once else rounds
        done = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                if not connection.in_atomic_block:  # a long-lived process: drop a broken or expired connection
                    close_old_connections()
                outcomes = collector.round()
            except DATABASE_UNAVAILABLE_ERRORS as exc:
                if once:
                    raise
                # Ride the outage out like the worker and beat do: the round is lost (its quotes would be stale by
                # the time the database is back anyway), the process is not; the heartbeat says it meanwhile.
                logger.warning("quote collector: database unavailable, round skipped", extra={"error": str(exc)})
                connection.close_if_unusable_or_obsolete()
                stop.wait(settings.ARB_QUOTE_POLL_SECONDS)
                continue
            done += 1
            if once or verbosity > 1:
                for o in outcomes:
                    self.stdout.write(
                        f"{o.venue}: {o.status} quotes={o.quotes} funding={o.funding} basis={o.basis}"
                        + (f" error={o.error_code}" if o.error_code else "")
                        + (f" failed={o.failed_markets}" if o.failed_markets else "")
                    )
                if not outcomes:
                    self.stdout.write("no crypto venue configured by any active tenant: nothing to collect")
            if limit and done >= limit:
                break
            # The loop's pace, not a wait for state: the next poll is due one interval after this one began.
            stop.wait(max(0.0, settings.ARB_QUOTE_POLL_SECONDS - (time.monotonic() - started)))
        logger.info("quote collector stopped", extra={"hostname": collector.hostname, "rounds": done})
