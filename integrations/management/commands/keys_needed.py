"""The Keys Needed checklist as a table; exit code 1 while a key an enabled capability needs is missing."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from controlplane import tenancy
from controlplane.models import Tenant
from integrations.checklist import keys_needed


class Command(BaseCommand):
    help = "List every provider key (set or missing, source, what it unlocks); exit 1 while a needed key is missing."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Tenant slug (default: every tenant; with none, the environment only).")

    def handle(self, *args, tenant=None, **options):
        if tenant:
            tenants = list(Tenant.objects.filter(slug=tenant))
            if not tenants:
                raise CommandError(f"No tenant {tenant!r}.")
        else:
            tenants = list(Tenant.objects.all()) or [None]
        incomplete = False
        for t in tenants:
            with tenancy.tenant_context(t.id if t else None), transaction.atomic():
                checklist = keys_needed()
            incomplete |= not checklist["complete"]
            self._print(t, checklist)
        if incomplete:
            sys.exit(1)

    def _print(self, tenant, checklist) -> None:
        out = self.stdout
        out.write(f"\nKeys needed for tenant {tenant.slug if tenant else '(none: environment only)'}")
        header = f"  {'KEY':<28} {'STATE':<8} {'SOURCE':<12} {'NEEDED':<7} UNLOCKS / FIX"
        for group in checklist["groups"]:
            out.write(f"\n[{group['category']}]")
            out.write(header)
            for key in group["keys"]:
                state = f"set {'…' + key['last4'] if key['last4'] else ''}".strip() if key["is_set"] else "MISSING"
                needed = "yes" if key["needed_now"] else ("req" if key["required"] else "opt")
                detail = key["unlocks"] if key["is_set"] else key["suggested_fix"]
                out.write(f"  {key['name']:<28} {state:<8} {key['source'] or '-':<12} {needed:<7} {detail}")
        if checklist["blockers"]:
            out.write("\nBLOCKED by:")
            for blocker in checklist["blockers"]:
                out.write(f"  - {blocker['message']} Fix: {blocker['suggested_fix']}")
        else:
            out.write("\nEvery key an enabled capability needs is set.")
