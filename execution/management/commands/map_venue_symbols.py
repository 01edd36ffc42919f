"""python manage.py map_venue_symbols --tenant SLUG --venue kraken [--instrument BTC-USD [--symbol BTC/USD]]:
store each crypto instrument's market at a venue, read from the venue's own market list."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from controlplane import tenancy
from controlplane.errors import ControlPlaneError
from controlplane.models import Tenant
from execution.marketdata.services import venue_symbols_map
from integrations.venue_symbols import CCXT_MARKET_TYPES


class Command(BaseCommand):
    help = (
        "Load a crypto venue's markets (ccxt load_markets, through the venue's client with the tenant's keys) "
        "and store each crypto instrument's market there in Instrument.venue_symbols, audited. Spot venues "
        "match base and quote exactly; a perpetual (Hyperliquid) is named with --symbol and checked against "
        "the list. Exit 1 while an instrument asked for could not be mapped (each is listed with its fix)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug whose keys and breaker the calls use.")
        parser.add_argument("--venue", required=True, choices=sorted(CCXT_MARKET_TYPES))
        parser.add_argument(
            "--instrument",
            action="append",
            default=[],
            help="Our symbol (BTC-USD); repeat for several. Default: every crypto instrument.",
        )
        parser.add_argument("--symbol", help="The venue's market for the one --instrument (e.g. BTC/USDC:USDC).")

    def handle(self, *args, tenant, venue, instrument, symbol=None, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant {tenant!r}.")
        try:
            with tenancy.tenant_context(found.id):
                result = venue_symbols_map(
                    venue=venue,
                    symbols=instrument,
                    market=symbol,
                    actor_name=f"map_venue_symbols (tenant {found.slug})",
                )
        except ControlPlaneError as error:
            raise CommandError(f"{error.code}: {error.message} {error.details or ''} Fix: {error.suggested_fix}")
        for ours, mapping in {**result["mapped"], **result["unchanged"]}.items():
            state = "mapped" if ours in result["mapped"] else "unchanged"
            self.stdout.write(
                f"{ours:<12} {venue}: {mapping['symbol']} ({mapping['type']}, base "
                f"{mapping['base']}, quote {mapping['quote']}) {state}"
            )
        for ours, problem in result["unmapped"].items():
            self.stdout.write(
                f"{ours:<12} {venue}: NOT MAPPED {problem['error_code']}: {problem['message']} "
                f"Fix: {problem['suggested_fix']}"
            )
        if result["unmapped"] and instrument:
            sys.exit(1)
