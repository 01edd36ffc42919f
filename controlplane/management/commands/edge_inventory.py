"""``manage.py edge_inventory PATH``: the spec's PHASE 1 inventory and PHASE 2 decision table for an old tree.

Exit status: 0 when no EXECUTION CRITICAL or STATE MUTATING function is invoked from the client sources, 3 while
one is (or a dynamic invoke hides which one), 1 on bad input (nothing written). The operator's CI runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from controlplane.edge_inventory import InventoryError, build_inventory, render_json, render_markdown

EXIT_STILL_INVOKED = 3


class Command(BaseCommand):
    help = (
        "Inventory and classify the Supabase edge functions under PATH/supabase/functions from their code, find "
        "their call sites in client sources, and print the decision table. Exits 3 while an execution critical or "
        "state mutating function is still invoked from client sources."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Root of the old Supabase project (the folder holding supabase/).")
        parser.add_argument(
            "--client-src",
            action="append",
            default=[],
            metavar="DIR",
            help="A client source folder to search for call sites (repeatable). Without one, UNUSED is unknown.",
        )
        parser.add_argument("--format", choices=["markdown", "json"], default="markdown")
        parser.add_argument("--out", metavar="FILE", help="Write the report to FILE instead of standard output.")

    def handle(self, *args, **options):
        out = Path(options["out"]) if options["out"] else None
        if out is not None and not out.parent.is_dir():
            raise CommandError(f"--out {out}: the folder {out.parent} does not exist.")
        try:
            inventory = build_inventory(options["path"], options["client_src"])
        except InventoryError as exc:
            raise CommandError(str(exc)) from exc
        report = render_json(inventory) if options["format"] == "json" else render_markdown(inventory)
        if out is not None:
            try:
                out.write_text(report, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {out}: {exc}") from exc
            self.stderr.write(f"Wrote {out}.")
        else:
            self.stdout.write(report, ending="")
        if not inventory.clean:
            names = ", ".join(f.name for f in inventory.still_invoked()) or "a dynamic invoke"
            self.stderr.write(f"Still invoked from client sources: {names}.")
            sys.exit(EXIT_STILL_INVOKED)
