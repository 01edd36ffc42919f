"""Who may do what: the request's tenant comes from the user's membership, and the role decides the action."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Membership, Tenant
from controlplane.selectors import memberships_of

TENANT_HEADER = "X-Tenant"


def _matches(tenant: Tenant, wanted: str) -> bool:
    return tenant.slug == wanted or (wanted.isdigit() and tenant.id == int(wanted))


def resolve_request_tenant(request) -> Membership:
    """Pick the tenant for an authenticated API request and bind it to the request's transaction.

    The ``X-Tenant`` header (slug or id) names one of the user's tenants; without it the request acts in the user's
    default tenant, the one they joined first, so joining another tenant never breaks a caller that sends no header.
    A tenant the user does not belong to is 404, the same answer as a tenant that does not exist. Superusers may
    name any tenant and act in it as owner.
    """
    user = request.user
    tenancy.activate(tenant_id=None, user_id=user.id)
    wanted = (request.headers.get(TENANT_HEADER) or "").strip()
    memberships = list(memberships_of(user))
    if wanted:
        membership = next((m for m in memberships if _matches(m.tenant, wanted)), None)
        if membership is None and user.is_superuser:
            tenant = next((t for t in Tenant.objects.all() if _matches(t, wanted)), None)
            if tenant is not None:
                membership = Membership(tenant=tenant, user=user, role=Membership.Role.OWNER)
        if membership is None:
            raise ControlPlaneError(ErrorCode.TENANT_NOT_FOUND)
    elif memberships:
        membership = memberships[0]
    else:
        raise ControlPlaneError(ErrorCode.NO_TENANT_MEMBERSHIP)
    tenancy.activate(tenant_id=membership.tenant_id, user_id=user.id)
    request.tenant = membership.tenant
    request.membership = membership
    return membership


def required_role(request, view) -> str:
    """A view may declare ``required_role``, or ``required_roles`` keyed by viewset action or HTTP method;
    otherwise reads need viewer and writes operator."""
    per_action = getattr(view, "required_roles", {})
    for key in (getattr(view, "action", None), request.method):
        if key in per_action:
            return per_action[key]
    if hasattr(view, "required_role"):
        return view.required_role
    return Membership.Role.VIEWER if request.method in SAFE_METHODS else Membership.Role.OPERATOR


class TenantRolePermission(BasePermission):
    """Default permission of every API view: authenticated, member of the tenant, and a role that allows it."""

    message = ErrorCode.PERMISSION_DENIED.default_message

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        membership = resolve_request_tenant(request)
        role = required_role(request, view)
        if not membership.allows(role):
            raise ControlPlaneError(
                ErrorCode.PERMISSION_DENIED,
                f"This needs the {role} role in tenant {membership.tenant.slug}; you are {membership.role}.",
            )
        return True


class AuthenticatedUser(BasePermission):
    """For the few views a user reaches before they belong to the tenant in question (their invitations): no tenant
    in context, only the user, so RLS shows them what is addressed to them and nothing of any tenant."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        tenancy.activate(tenant_id=None, user_id=request.user.id)
        return True


class IsSuperuser(BasePermission):
    """Platform-wide actions (the global kill) belong to superusers only."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)
