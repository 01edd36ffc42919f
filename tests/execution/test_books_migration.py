"""The books migrations' backfills (execution 0014, bots 0007): rows that existed before books land where they
belong in every tenant, through RLS (the backfill sets each tenant as the runtime does): positions, watermarks
and profit variables in paper (the column's default, not tested here), inventory and reconcile reports by venue."""

import importlib
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from bots.models import Reconciliation
from controlplane import tenancy
from execution.models import VenueInventory

pytestmark = pytest.mark.django_db


def _backfill(module: str, function: str) -> None:
    with transaction.atomic():
        getattr(importlib.import_module(module), function)(None, SimpleNamespace(connection=connection))


def test_inventory_of_a_live_venue_moves_to_the_live_book_in_every_tenant(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        with tenancy.tenant_context(tenant.id):
            VenueInventory.objects.create(venue="sim", asset="ES", quantity=2, book="paper")
            VenueInventory.objects.create(venue="coinbase", asset="BTC-USD", quantity=1, book="paper")
    _backfill("execution.migrations.0014_books_per_trading_context", "inventory_of_live_venues_to_live")
    for tenant in (tenant_a, tenant_b):
        with tenancy.tenant_context(tenant.id):
            assert dict(VenueInventory.objects.values_list("venue", "book")) == {"sim": "paper", "coinbase": "live"}


def test_reconcile_reports_take_the_book_of_their_venue(tenant_a, tenant_b, owner_b, trading_bot):
    for tenant, bot in ((tenant_a, trading_bot()), (tenant_b, trading_bot(tenant=tenant_b, actor=owner_b))):
        with tenancy.tenant_context(tenant.id):
            for venue in ("sim", "tradovate"):
                Reconciliation.objects.create(
                    bot=bot,
                    venue=venue,
                    book="paper",
                    status="MATCHED",
                    is_flat=True,
                    requested_by="test",
                    trace_id="t",
                )
    _backfill("bots.migrations.0007_reconciliation_book", "book_from_venue")
    for tenant in (tenant_a, tenant_b):
        with tenancy.tenant_context(tenant.id):
            assert dict(Reconciliation.objects.values_list("venue", "book")) == {"sim": "paper", "tradovate": "live"}
