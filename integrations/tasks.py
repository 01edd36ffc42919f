"""Beat-driven re-verification: one fan-out task, then one thin TenantTask per tenant."""

from __future__ import annotations

from celery import shared_task

from controlplane.celery import TenantTask
from controlplane.models import Tenant


@shared_task(name="integrations.reverify_all_tenants")
def reverify_all_tenants() -> int:
    tenant_ids = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("id", flat=True))
    for tenant_id in tenant_ids:
        reverify_tenant.apply_async(kwargs={"tenant_id": tenant_id})
    return len(tenant_ids)


@shared_task(name="integrations.reverify_tenant", base=TenantTask)
def reverify_tenant(*, tenant_id: int) -> dict[str, str]:
    from integrations.services import reverify_configured

    return {v.provider: v.status for v in reverify_configured()}
