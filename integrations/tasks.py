"""Beat-driven re-verification: one fan-out task, then one thin TenantTask per tenant."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from controlplane.celery import TenantTask, fan_out_per_tenant
from controlplane.selectors import active_tenant_ids


@shared_task(name="integrations.reverify_all_tenants")
def reverify_all_tenants() -> int:
    """Active tenants only: a verification calls the provider, and a suspended tenant's keys are not used."""
    return fan_out_per_tenant(
        reverify_tenant,
        tenant_ids=active_tenant_ids(),
        queue="verify",
        expires=settings.INTEGRATION_VERIFY_INTERVAL_SECONDS * 0.9,
    )


@shared_task(name="integrations.reverify_tenant", base=TenantTask)
def reverify_tenant(*, tenant_id: int) -> dict[str, str]:
    from integrations.services import reverify_configured

    return {v.provider: v.status for v in reverify_configured()}
