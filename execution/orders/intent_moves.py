"""Moving many intents from one status to another in one statement, with the ``intent.status`` audit row
:func:`execution.orders.intents.intent_transition` writes for each: the OMS's batch moves (ACCEPTED, WORKING) and the
fill booking's (PARTIALLY_FILLED, FILLED)."""

from __future__ import annotations

import json

from django.db import connection
from django.utils import timezone

from controlplane import tenancy
from controlplane.trace import current_trace_id
from execution.orders.intents import TRANSITIONS
from execution.orders.writer import ACTOR


def move_audited(update: str, params: list, *, before: str, after: str) -> list[int]:
    """Run ``update`` (an UPDATE of the current tenant's intents ``RETURNING`` their ids) and write the
    ``intent.status`` audit row :func:`intent_transition` writes for each intent it moved, in one statement
    (``WITH moved AS (update) INSERT ... SELECT ... FROM moved``): one round trip for the move and its audit, and
    no audit object built per intent. Returns the ids moved."""
    ctes, params = move_audited_ctes(update, params, before=before, after=after)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT resource_id FROM audit", params)
        return [int(resource_id) for (resource_id,) in cursor.fetchall()]


def move_audited_ctes(update: str, params: list, *, before: str, after: str) -> tuple[str, list]:
    """The common table expressions :func:`move_audited` runs (``moved AS (update), audit AS (INSERT ...
    RETURNING resource_id)``) and their parameters, for a caller that writes more in the same statement (the OMS's
    acknowledgements: the orders' update and the intents' move in one round trip)."""
    if after not in TRANSITIONS.get(before, set()):
        raise ValueError(f"{before} -> {after} is not an intent transition")
    sql = (
        f"moved AS ({update}), audit AS ("
        "INSERT INTO controlplane_auditevent (tenant_id, actor_user_id, actor, action, resource_type, resource_id, "
        "before_state, after_state, trace_id, created_at) "
        "SELECT %s, NULL, %s, 'intent.status', 'intent', moved.id::text, %s::jsonb, %s::jsonb, %s, %s "
        "FROM moved ORDER BY moved.id RETURNING resource_id)"
    )
    tail = [
        tenancy.require_tenant_id(),
        ACTOR,
        json.dumps({"status": str(before)}),
        json.dumps({"status": str(after)}),
        current_trace_id(),
        timezone.now(),
    ]
    return sql, [*params, *tail]
