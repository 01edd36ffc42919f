"""Template context processors of the console (settings.TEMPLATES): kept out of ``tenancy``, which the models
import, so that the tenant switcher's read of memberships does not make the core import itself in a circle."""

from __future__ import annotations

from controlplane.selectors import switchable_tenants_for


def admin_tenant_context(request) -> dict:
    """Template context for the admin header: the active tenant and the ones the user may switch to."""
    if (
        not request.path.startswith("/admin/")
        or not getattr(request, "user", None)
        or not request.user.is_authenticated
    ):
        return {}
    return {"admin_tenant": getattr(request, "tenant", None), "admin_tenants": switchable_tenants_for(request.user)}
