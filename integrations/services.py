"""State changes of the integrations app: set and clear credentials, verify providers (and their keys'
permissions), an owner's confirmation of a key the venue cannot report, rotate the key."""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Membership
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from controlplane.selectors import all_tenant_ids
from integrations import credentials, crypto, permissions
from integrations.clients import client_for
from integrations.models import IntegrationCredential, IntegrationVerification, KeyPermissionConfirmation
from integrations.providers.base import IntegrationError
from integrations.registry import Provider, all_providers, get_provider


def _configurable_provider(provider: str) -> Provider:
    spec = get_provider(provider)
    if spec is None:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"provider": [f"Unknown provider {provider!r}."]})
    if not spec.tenant_configurable:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            details={"provider": [f"{provider} is configured by the deployment's environment, not per tenant."]},
        )
    return spec


def _validated(spec: Provider, values: dict[str, str]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    clean = {}
    if not values:
        errors["values"] = ["Give at least one credential."]
    for name, value in values.items():
        field = spec.field(name)
        if field is None:
            errors[name] = [
                f"{spec.provider} has no credential {name}; it has {', '.join(spec.required_env_vars + spec.optional_env_vars)}."
            ]
            continue
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            errors[name] = ["May not be blank; clear the credential instead."]
        elif field.choices and value not in field.choices:
            errors[name] = [f"Must be one of {', '.join(field.choices)}."]
        else:
            clean[name] = value
    if errors:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details=errors)
    return clean


def credentials_set(*, provider: str, values: dict[str, str], actor) -> list[IntegrationCredential]:
    """An owner sets credential fields of a provider for the current tenant; all of them or none."""
    spec = _configurable_provider(provider)
    clean = _validated(spec, values)
    tenant_id = tenancy.require_tenant_id()
    now = timezone.now()
    saved = []
    with transaction.atomic():
        for name, value in clean.items():
            field = spec.field(name)
            existing = IntegrationCredential.objects.select_for_update().filter(provider=provider, name=name).first()
            row = existing or IntegrationCredential(tenant_id=tenant_id, provider=provider, name=name)
            row.ciphertext = crypto.encrypt(value)
            row.last4 = value if not field.secret and len(value) <= 4 else credentials.hint_of(value)
            row.set_by = actor if getattr(actor, "is_authenticated", False) else None
            row.set_at = now
            row.save()
            audit_record(
                action="integration.credential.set",
                resource_type="integration_credential",
                resource_id=f"{provider}.{name}",
                actor=actor,
                before={"is_set": existing is not None},
                after={"is_set": True},
            )
            saved.append(row)
    return saved


def credential_clear(*, provider: str, name: str, actor) -> None:
    spec = _configurable_provider(provider)
    if spec.field(name) is None:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"name": [f"{provider} has no credential {name}."]})
    with transaction.atomic():
        deleted, _ = IntegrationCredential.objects.filter(provider=provider, name=name).delete()
        if not deleted:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"{provider}.{name} is not set for this tenant.")
        audit_record(
            action="integration.credential.clear",
            resource_type="integration_credential",
            resource_id=f"{provider}.{name}",
            actor=actor,
            before={"is_set": True},
            after={"is_set": False},
        )


def verify_provider(
    *, provider: str, actor=None, actor_name: str | None = None, bot_id: int | None = None
) -> IntegrationVerification:
    """Run the provider's real, non-destructive check and store the result (also when it fails).

    A venue's verify also reads what its key may do: a key that can withdraw or transfer funds fails here
    (INTEGRATION_KEY_TOO_POWERFUL), and what the venue said, or ``unknown``, is stored either way."""
    spec = get_provider(provider)
    if spec is None:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"provider": [f"Unknown provider {provider!r}."]})
    with transaction.atomic():
        missing = credentials.missing_env_vars(spec)
        started = time.monotonic()
        summary: dict = {}
        key_permissions, fingerprint = None, ""
        if missing:
            status, code, message, latency = (
                IntegrationVerification.Status.FAILED,
                ErrorCode.INTEGRATION_KEY_MISSING,
                f"Missing {', '.join(missing)}.",
                None,
            )
        else:
            client = client_for(provider, bot_id=bot_id)
            if permissions.applies_to(spec):
                fingerprint = permissions.fingerprint(provider, client.credentials)
            try:
                summary = client.verify()
                status, code, message = IntegrationVerification.Status.OK, None, ""
                if permissions.applies_to(spec):
                    # A venue client that says nothing about its key has not shown it is trade-only.
                    key_permissions = summary.get("permissions", permissions.UNKNOWN)
                    refused = permissions.refusal(spec, key_permissions, trade_only_fix=client.trade_only_key_fix)
                    if refused:
                        status, (code, message) = IntegrationVerification.Status.FAILED, refused
            except IntegrationError as exc:
                status, code, message = IntegrationVerification.Status.FAILED, exc.code, exc.message
            latency = int((time.monotonic() - started) * 1000)
        verification = IntegrationVerification.objects.create(
            tenant_id=tenancy.require_tenant_id(),
            provider=provider,
            status=status,
            error_code=str(code) if code else "",
            message=message[:500],
            latency_ms=latency,
            source=credentials.source_of(credentials.field_states(spec)),
            permissions=key_permissions,
            key_fingerprint=fingerprint,
            trace_id=current_trace_id(),
            verified_at=timezone.now(),
        )
        verification.summary = summary
        audit_record(
            action="integration.verify",
            resource_type="integration",
            resource_id=provider,
            actor=actor,
            actor_name=actor_name,
            after={"status": status, "error_code": verification.error_code, "permissions": key_permissions},
        )
    return verification


def _is_owner(actor) -> bool:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    return (
        bool(getattr(actor, "is_superuser", False))
        or Membership.objects.filter(
            user_id=actor.pk, tenant_id=tenancy.require_tenant_id(), role=Membership.Role.OWNER
        ).exists()
    )


def key_permissions_confirm(*, provider: str, actor) -> KeyPermissionConfirmation:
    """An owner confirms that the venue key verified last, whose permissions the venue cannot report, can neither
    withdraw nor transfer funds. It holds for that key while re-verifies report the same; a new key voids it."""
    spec = get_provider(provider)
    if spec is None or not permissions.applies_to(spec):
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            details={
                "provider": [f"{provider!r} is not a broker or crypto venue; its keys have no trading permissions."]
            },
        )
    if not _is_owner(actor):
        raise ControlPlaneError(
            ErrorCode.PERMISSION_DENIED, "Only an owner of the tenant may confirm a key's permissions."
        )
    with transaction.atomic():
        verification = (
            IntegrationVerification.objects.select_for_update()
            .filter(provider=provider)
            .order_by("-verified_at", "-id")
            .first()
        )
        if verification is None or verification.status != IntegrationVerification.Status.OK:
            raise ControlPlaneError(
                ErrorCode.INTEGRATION_UNVERIFIED,
                f"{spec.label} has no successful verification to confirm; verify it first.",
            )
        if permissions.is_known(verification.permissions):
            raise ControlPlaneError(
                ErrorCode.CONFLICT,
                f"{spec.label} reported this key's permissions itself "
                "(verify checked them); there is nothing to confirm.",
            )
        if verification.permissions is None:
            raise ControlPlaneError(
                ErrorCode.INTEGRATION_UNVERIFIED,
                f"{spec.label} was verified before key permissions were checked; verify again.",
            )
        existing = permissions.valid_confirmation(verification)
        confirmation = KeyPermissionConfirmation.objects.create(
            tenant_id=tenancy.require_tenant_id(),
            provider=provider,
            verification=verification,
            key_fingerprint=verification.key_fingerprint,
            permissions=verification.permissions,
            confirmed_by=actor,
            confirmed_at=timezone.now(),
            trace_id=current_trace_id(),
        )
        audit_record(
            action="integration.key_permissions.confirm",
            resource_type="integration",
            resource_id=provider,
            actor=actor,
            before={"confirmed": existing is not None},
            after={"confirmed": True, "verification_id": verification.id, "permissions": verification.permissions},
        )
    return confirmation


def configured_providers() -> list[str]:
    return [p.provider for p in all_providers() if not credentials.missing_env_vars(p)]


def reverify_configured(*, actor_name: str = "verify-schedule") -> list[IntegrationVerification]:
    """Re-verify every provider the current tenant has configured, each in its own transaction."""
    return [verify_provider(provider=name, actor_name=actor_name) for name in configured_providers()]


def credentials_reencrypt() -> int:
    """Re-encrypt every stored credential of every tenant under the newest key; returns how many rows."""
    count = 0
    for tenant_id in all_tenant_ids():
        with tenancy.tenant_context(tenant_id), transaction.atomic():
            rows = list(IntegrationCredential.objects.select_for_update())
            for row in rows:
                row.ciphertext = crypto.rotate(row.ciphertext)
                row.save(update_fields=["ciphertext"])
            if rows:
                audit_record(
                    action="integration.credentials.reencrypt",
                    resource_type="integration_credential",
                    actor_name="rotate_credentials",
                    after={"count": len(rows)},
                )
            count += len(rows)
    return count
