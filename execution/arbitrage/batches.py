"""A scan batch across tenants: each tenant's running scanner bots in its own transaction (RLS context), then
their intents handed to the OMS, as the bar tick's batch does (execution.tick.batches)."""

from __future__ import annotations

import logging
from datetime import datetime

from controlplane import tenancy
from controlplane.broker import publish_on_commit
from controlplane.selectors import active_tenant_ids
from execution.arbitrage.pnl import settle_finished_intents
from execution.arbitrage.scanner import ScanTotals, scan_tenant
from execution.orders.oms import process_pending_intents
from execution.orders.oms_runs import request_oms_run

logger = logging.getLogger(__name__)


def run_scan_batch(*, as_of: datetime, sync_oms: bool = False, tenant_ids: list[int] | None = None) -> ScanTotals:
    """Scan every active tenant's running scanner bots as of ``as_of``. One tenant's failure is logged and does
    not stop the others. ``sync_oms`` processes the created intents in-process (tests, replays, benchmarks)."""
    totals = ScanTotals()
    for tenant_id in tenant_ids if tenant_ids is not None else active_tenant_ids():
        created_before = totals.intents_created
        try:
            with tenancy.tenant_context(tenant_id):
                settle_finished_intents()
                scan_tenant(as_of=as_of, totals=totals)
        except Exception:
            logger.exception("scan failed for a tenant", extra={"tenant_id": tenant_id})
            totals.errors += 1
            continue
        if totals.intents_created > created_before:
            hand_to_oms(tenant_id, sync=sync_oms)
    return totals


def hand_to_oms(tenant_id: int, *, sync: bool) -> None:
    if sync:
        with tenancy.tenant_context(tenant_id):
            process_pending_intents()
    else:  # coalesced, as an API submission's (execution.orders.oms_runs)
        publish_on_commit(lambda: request_oms_run(tenant_id), what=f"OMS run of tenant {tenant_id}")
