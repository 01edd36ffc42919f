"""State changes of the tenancy core, and the audit helper every other service uses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from controlplane import tenancy
from controlplane.models import AuditEvent, Membership, Tenant
from controlplane.trace import current_trace_id


def audit_record(
    *,
    action: str,
    resource_type: str,
    resource_id: Any = "",
    actor=None,
    actor_name: str | None = None,
    tenant_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append an audit event in the caller's transaction (so it commits or rolls back with the change).

    ``actor`` is a user; system components pass ``actor_name`` instead ("watchdog", "supervisor").
    ``tenant_id`` defaults to the tenant in context; platform-wide events pass ``tenant_id=None`` explicitly
    with no tenant in context.
    """
    if tenant_id is None:
        tenant_id = tenancy.current_tenant_id()
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.unscoped.create(
        tenant_id=tenant_id,
        actor_user=user,
        actor=actor_name or (user.get_username() if user else "system"),
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        before_state=before,
        after_state=after,
        trace_id=current_trace_id(),
    )


@dataclass(frozen=True)
class BootstrapResult:
    tenant: Tenant
    user: Any
    membership: Membership
    token: str
    password: str | None  # only when the user was created now
    created_tenant: bool
    created_membership: bool


def tenant_bootstrap(
    *, slug: str, username: str, email: str = "", role: str = Membership.Role.OWNER, name: str | None = None,
    actor_name: str = "bootstrap_tenant", password: str | None = None, staff: bool = False,
) -> BootstrapResult:
    """Create the tenant, the user, their membership and an API token; a second call changes nothing."""
    User = get_user_model()
    with transaction.atomic():
        tenant, created_tenant = Tenant.objects.select_for_update().get_or_create(
            slug=slug, defaults={"name": name or slug}
        )
        with tenancy.tenant_context(tenant.id):
            if created_tenant:
                audit_record(action="tenant.create", resource_type="tenant", resource_id=tenant.id,
                             actor_name=actor_name, after={"slug": slug, "name": tenant.name})
            user = User.objects.filter(username=username).first()
            new_password = None
            if user is None:
                new_password = password or secrets.token_urlsafe(18)
                user = User.objects.create_user(username=username, email=email, password=new_password,
                                                is_staff=staff)
                audit_record(action="user.create", resource_type="user", resource_id=user.id,
                             actor_name=actor_name, after={"username": username, "email": email})
            membership, created_membership = Membership.objects.get_or_create(
                tenant=tenant, user=user, defaults={"role": role}
            )
            if created_membership:
                audit_record(action="membership.create", resource_type="membership", resource_id=membership.id,
                             actor_name=actor_name, after={"user": username, "role": role})
            token, _ = Token.objects.get_or_create(user=user)
    return BootstrapResult(tenant, user, membership, token.key, new_password, created_tenant, created_membership)


def membership_add(*, username: str, role: str, actor) -> Membership:
    """An owner adds an existing user to the current tenant."""
    from controlplane.errors import ControlPlaneError, ErrorCode

    User = get_user_model()
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR, details={"username": [f"No active user named {username!r}."]}
        )
    tenant_id = tenancy.require_tenant_id()
    with transaction.atomic():
        if Membership.objects.select_for_update().filter(user=user).exists():
            raise ControlPlaneError(
                ErrorCode.CONFLICT, f"{username} is already a member of this tenant.",
                suggested_fix="Change the existing membership's role instead.",
            )
        membership = Membership.objects.create(tenant_id=tenant_id, user=user, role=role)
        audit_record(action="membership.create", resource_type="membership", resource_id=membership.id,
                     actor=actor, after={"user": username, "role": role})
    return membership
