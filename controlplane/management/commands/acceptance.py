"""``manage.py acceptance``: the spec's PHASE 6 evidence against a running portal, over HTTP only.

Exit status: 0 when every check PASSes, 1 when any FAILs, 3 when none fails but some could not be verified
(the output says what was missing: a log file, a client folder, a configured key, a bot to tick).
"""

from __future__ import annotations

import os
import sys

import requests
from django.core.management.base import BaseCommand, CommandError

from controlplane import acceptance

EXIT_FAILED, EXIT_NOT_VERIFIED = 1, 3


class Command(BaseCommand):
    help = (
        "Run the master spec's PHASE 6 acceptance checks against a running portal over HTTP and print each "
        "check's commands, output and PASS / FAIL / NOT VERIFIED."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="The portal's address.")
        parser.add_argument(
            "--token",
            help="An API token of an operator of the tenant (default: $CONTROLPLANE_TOKEN). "
            "`python manage.py bootstrap_tenant` prints one.",
        )
        parser.add_argument("--tenant", help="The tenant's slug or id (X-Tenant), when the token's user has several.")
        parser.add_argument("--client-src", action="append", default=[], metavar="DIR", help="Check 1 (repeatable).")
        parser.add_argument("--log-file", help="Check 2: the portal's JSON log, to find [EDGE_CALL_BLOCKED] lines.")
        parser.add_argument("--bot", type=int, help="Check 4: a bot whose keys are missing (default: found).")
        parser.add_argument("--verify-provider", help="Check 5: the provider to verify (default: a configured one).")
        parser.add_argument("--tick-bot", type=int, help="Check 5: a bot to watch tick (started if not LIVE).")
        parser.add_argument("--tick-timeout", type=float, default=150.0, help="Check 5: seconds to wait for a tick.")

    def handle(self, *args, **options):
        token = options["token"] or os.environ.get("CONTROLPLANE_TOKEN")
        if not token:
            raise CommandError("No API token: give --token or set CONTROLPLANE_TOKEN (see README, API tokens).")
        portal = acceptance.Portal(options["base_url"], token, tenant=options["tenant"])
        try:
            me = portal.call("GET", "/api/me")
        except requests.RequestException as exc:
            raise CommandError(f"Cannot reach {options['base_url']}: {exc}") from exc
        if me.status != 200:
            raise CommandError(
                f"{options['base_url']}/api/me answered {me.status} {me.get('error_code')}: check the token."
            )
        runs = [
            lambda: acceptance.check_no_edge_invocation(options["client_src"]),
            lambda: acceptance.check_edge_calls_blocked(portal, options["log_file"]),
            lambda: acceptance.check_system_status(portal),
            lambda: acceptance.check_safe_start(portal, options["bot"]),
            lambda: acceptance.check_proof_of_use(
                portal,
                provider=options["verify_provider"],
                tick_bot=options["tick_bot"],
                tick_timeout=options["tick_timeout"],
            ),
        ]
        results = []
        for run in runs:
            try:
                check = run()
            except requests.RequestException as exc:
                raise CommandError(f"The portal stopped answering: {exc}") from exc
            results.append(check)
            self.stdout.write(f"== Check {check.number}: {check.title}")
            for line in check.lines:
                self.stdout.write(line)
            self.stdout.write("")
        self.stdout.write("Summary:")
        for check in results:
            self.stdout.write(f"  {check.verdict:<12} {check.number}. {check.title}")
        verdicts = {check.verdict for check in results}
        if acceptance.FAIL in verdicts:
            sys.exit(EXIT_FAILED)
        if acceptance.NOT_VERIFIED in verdicts:
            sys.exit(EXIT_NOT_VERIFIED)
