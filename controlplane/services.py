"""State changes of the tenancy core, and the audit helper every other service uses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import BigIntegerField, F, Func
from django.utils import timezone

from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import ApiToken, AuditEvent, Invitation, Membership, Tenant
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
    token: str | None  # only when one was issued now (a new user, or new_token=True): shown once, stored as a digest
    password: str | None  # only when the user was created now
    created_tenant: bool
    created_membership: bool


def tenant_bootstrap(
    *,
    slug: str,
    username: str,
    email: str = "",
    role: str = Membership.Role.OWNER,
    name: str | None = None,
    actor_name: str = "bootstrap_tenant",
    password: str | None = None,
    staff: bool = False,
    new_token: bool = False,
) -> BootstrapResult:
    """Create the tenant, the user, their membership and (for a new user) an API token; a second call changes
    nothing and returns no token, unless ``new_token`` asks for a fresh one (older tokens keep working)."""
    User = get_user_model()
    with transaction.atomic():
        tenant, created_tenant = Tenant.objects.select_for_update().get_or_create(
            slug=slug, defaults={"name": name or slug}
        )
        with tenancy.tenant_context(tenant.id):
            if created_tenant:
                audit_record(
                    action="tenant.create",
                    resource_type="tenant",
                    resource_id=tenant.id,
                    actor_name=actor_name,
                    after={"slug": slug, "name": tenant.name},
                )
            user = User.objects.filter(username=username).first()
            new_password = None
            if user is None:
                new_password = password or secrets.token_urlsafe(18)
                user = User.objects.create_user(username=username, email=email, password=new_password, is_staff=staff)
                audit_record(
                    action="user.create",
                    resource_type="user",
                    resource_id=user.id,
                    actor_name=actor_name,
                    after={"username": username, "email": email},
                )
            membership, created_membership = Membership.objects.get_or_create(
                tenant=tenant, user=user, defaults={"role": role}
            )
            if created_membership:
                audit_record(
                    action="membership.create",
                    resource_type="membership",
                    resource_id=membership.id,
                    actor_name=actor_name,
                    after={"user": username, "role": role},
                )
            token = None
            if new_password is not None or new_token:
                _, token = token_issue(user=user, name=actor_name, actor_name=actor_name)
    return BootstrapResult(tenant, user, membership, token, new_password, created_tenant, created_membership)


def token_issue(*, user, name: str = "", actor=None, actor_name: str | None = None) -> tuple[ApiToken, str]:
    """A new API token for ``user``: the row keeps only its digest; the value is returned this once."""
    api_token, value = ApiToken.objects.create(user=user, expiry=None, name=name[:100])
    audit_record(
        action="token.issue",
        resource_type="api_token",
        resource_id=api_token.id,
        actor=actor,
        actor_name=actor_name,
        after={"user": user.get_username(), "name": api_token.name},
    )
    return api_token, value


def tokens_revocable_by_tenant_owner(tenant_id: int):
    """Tokens a tenant's owner may list and revoke: those of users who are members of this tenant and of no other
    (a token works in every tenant of its user, so another tenant's owner must not end it)."""
    # RLS hides other tenants' memberships: app_user_tenant_count() (migration 0005) counts a user's tenants
    # through the policy's own-rows branch and tells nothing else.
    members = Membership.objects.filter(tenant_id=tenant_id).values("user_id")
    tenants = Func(F("user_id"), function="app_user_tenant_count", output_field=BigIntegerField())
    return ApiToken.objects.filter(user_id__in=members).alias(tenants=tenants).filter(tenants=1).select_related("user")


def token_revoke(*, token_id: int, actor, as_tenant_owner: bool = False) -> None:
    """The token's user revokes it, or an owner of the current tenant revokes a member's; anything else is 404."""
    with transaction.atomic():
        if as_tenant_owner:
            candidates = tokens_revocable_by_tenant_owner(tenancy.current_tenant_id())
        else:
            candidates = ApiToken.objects.filter(user=actor)
        api_token = candidates.select_for_update(of=("self",)).filter(id=token_id).first()
        if api_token is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, message=f"No API token {token_id} you can revoke.")
        audit_record(
            action="token.revoke",
            resource_type="api_token",
            resource_id=api_token.id,
            actor=actor,
            before={"user": api_token.user.get_username(), "name": api_token.name},
        )
        api_token.delete()


def _resolve_invitee(invitee: str):
    """The one active user an invitation addresses: by email when it has an @, else by username; None when no user
    (or, for an email, more than one) matches. Callers never tell the inviter which it was."""
    User = get_user_model()
    users = User.objects.filter(is_active=True)
    matches = list(users.filter(email__iexact=invitee)[:2] if "@" in invitee else users.filter(username=invitee))
    return matches[0] if len(matches) == 1 else None


def invitation_create(*, invitee: str, role: str, actor) -> Invitation:
    """An owner invites a username or an email to the current tenant. Nobody becomes a member until the invited user
    accepts; an invitee that names nobody still gets its row (it expires unanswered), so the answer and the owner's
    list look the same whether the user exists or not."""
    invitee = invitee.strip()
    tenant_id = tenancy.require_tenant_id()
    with transaction.atomic():
        invitation = Invitation.objects.create(
            tenant_id=tenant_id,
            invitee=invitee,
            invited_user=_resolve_invitee(invitee),
            role=role,
            expires_at=timezone.now() + timedelta(hours=settings.TENANT_INVITATION_TTL_HOURS),
            created_by=actor,
        )
        audit_record(
            action="invitation.create",
            resource_type="invitation",
            resource_id=invitation.id,
            actor=actor,
            after={"invitee": invitee, "role": role},
        )
    return invitation


def _answerable_invitation(*, invitation_id: int, user) -> Invitation:
    """Lock a pending, unexpired invitation addressed to ``user``; any other is 404 or 409."""
    with tenancy.tenant_context(None, user_id=user.id):  # RLS shows a user the invitations addressed to them
        invitation = Invitation.unscoped.select_for_update().filter(id=invitation_id, invited_user=user).first()
    if invitation is None:
        raise ControlPlaneError(ErrorCode.NOT_FOUND, "No invitation of yours has this id.")
    _require_pending(invitation)
    if invitation.expires_at <= timezone.now():
        raise ControlPlaneError(
            ErrorCode.ILLEGAL_TRANSITION,
            "This invitation has expired.",
            suggested_fix="Ask an owner of the tenant to invite you again.",
            details={"expires_at": invitation.expires_at.isoformat()},
        )
    return invitation


def _require_pending(invitation: Invitation) -> None:
    if invitation.status != Invitation.Status.PENDING:
        raise ControlPlaneError(
            ErrorCode.ILLEGAL_TRANSITION,
            f"This invitation is {invitation.status.lower()}.",
            details={"current": invitation.status, "requested": "answered"},
        )


def _answer(invitation: Invitation, status: str, *, actor) -> None:
    before = invitation.status
    invitation.status, invitation.answered_at = status, timezone.now()
    invitation.save(update_fields=["status", "answered_at"])
    audit_record(
        action=f"invitation.{status.lower()}",
        resource_type="invitation",
        resource_id=invitation.id,
        actor=actor,
        before={"status": before},
        after={"status": status},
    )


def invitation_accept(*, invitation_id: int, user) -> Membership:
    """The invited user accepts: only now do they become a member, with the invited role."""
    with transaction.atomic():
        invitation = _answerable_invitation(invitation_id=invitation_id, user=user)
        with tenancy.tenant_context(invitation.tenant_id, user_id=user.id):
            if Membership.objects.filter(user=user).exists():
                raise ControlPlaneError(
                    ErrorCode.CONFLICT,
                    "You are already a member of this tenant.",
                    suggested_fix="Decline the invitation; an owner can remove and re-invite you.",
                )
            membership = Membership.objects.create(tenant_id=invitation.tenant_id, user=user, role=invitation.role)
            _answer(invitation, Invitation.Status.ACCEPTED, actor=user)
            audit_record(
                action="membership.create",
                resource_type="membership",
                resource_id=membership.id,
                actor=user,
                after={"user": user.get_username(), "role": membership.role, "invitation": invitation.id},
            )
    return membership


def invitation_decline(*, invitation_id: int, user) -> Invitation:
    with transaction.atomic():
        invitation = _answerable_invitation(invitation_id=invitation_id, user=user)
        with tenancy.tenant_context(invitation.tenant_id, user_id=user.id):
            _answer(invitation, Invitation.Status.DECLINED, actor=user)
    return invitation


def invitation_revoke(*, invitation_id: int, actor) -> Invitation:
    """An owner withdraws a pending invitation of the current tenant."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(id=invitation_id).first()
        if invitation is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, "No invitation of this tenant has this id.")
        _require_pending(invitation)
        _answer(invitation, Invitation.Status.REVOKED, actor=actor)
    return invitation


def membership_remove(*, membership_id: int, actor) -> None:
    """An owner removes a member of the current tenant (themselves included), never the last owner.

    The tenant's owner rows are locked first, so two owners removing each other at once cannot both succeed."""
    with transaction.atomic():
        owners = list(Membership.objects.select_for_update().filter(role=Membership.Role.OWNER).order_by("id"))
        membership = Membership.objects.select_for_update().select_related("user").filter(id=membership_id).first()
        if membership is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, "No member of this tenant has this id.")
        if membership.role == Membership.Role.OWNER and len(owners) == 1:
            raise ControlPlaneError(
                ErrorCode.CONFLICT,
                "This is the tenant's last owner.",
                suggested_fix="Invite another owner and let them accept first.",
            )
        before = {"user": membership.user.get_username(), "role": membership.role}
        membership.delete()
        audit_record(
            action="membership.remove",
            resource_type="membership",
            resource_id=membership_id,
            actor=actor,
            before=before,
        )
