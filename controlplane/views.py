"""Admin-side views that are not ModelAdmin pages."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from controlplane.selectors import ADMIN_TENANT_SESSION_KEY, switchable_tenants_for


@staff_member_required
@require_POST
def admin_switch_tenant(request):
    """The admin works in one tenant at a time (RLS scopes every page to it); this picks which."""
    tenant = switchable_tenants_for(request.user).filter(id=request.POST.get("tenant_id") or 0).first()
    if tenant is None:
        messages.error(request, "You are not a member of that tenant.")
    else:
        request.session[ADMIN_TENANT_SESSION_KEY] = tenant.id
        messages.success(request, f"Now working in tenant {tenant.slug}.")
    next_url = request.POST.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/admin/"
    return redirect(next_url)
