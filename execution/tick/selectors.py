"""Reads about the tick itself that the judging layer needs (system status' scheduler section)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction


def last_tick_at(tenant_id: int) -> datetime | None:
    """When any of the tenant's runners last ticked (system status' scheduler section)."""
    from django.db.models import Max

    from bots.models import Runner
    from controlplane import tenancy

    with tenancy.tenant_context(tenant_id), transaction.atomic():
        return Runner.objects.aggregate(latest=Max("last_tick_at"))["latest"]
