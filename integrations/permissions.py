"""Key permissions, fail closed: what a venue key may do, and the one place that decides whether that is allowed.

A trading key must not be able to move money out. Each venue client reads what its API reports about the key
(``permissions`` in its verify summary: ``can_trade``, ``can_withdraw``, ``can_transfer``, where it was read and
the venue's own words) or says ``unknown`` when the API cannot tell. ``refusal`` turns a key that can withdraw or
transfer into a failed verification (``INTEGRATION_KEY_TOO_POWERFUL``); ``live_blocker`` keeps a LIVE start closed
while a key's permissions are unknown and no owner has confirmed it for that very key. Paper trading runs on the
sim venue and never asks.
"""

from __future__ import annotations

from django.utils.crypto import salted_hmac

from controlplane.errors import ErrorCode
from integrations.models import IntegrationVerification, KeyPermissionConfirmation
from integrations.registry import Category, Provider

UNKNOWN = "unknown"
TRADING_CATEGORIES = (Category.BROKER, Category.CRYPTO_VENUE)
# The capabilities that move money out of the account; any one of them makes the key too powerful.
MONEY_MOVING = ("can_withdraw", "can_transfer")


def applies_to(spec: Provider) -> bool:
    """Only providers that hold the tenant's money have key permissions worth reading."""
    return spec.category in TRADING_CATEGORIES


def key_change_needs_step_up(provider: str) -> bool:
    """Entering or clearing a broker's or a crypto venue's key needs a fresh second factor (controlplane.stepup):
    those keys reach the tenant's money. Market data, AI and notification keys do not."""
    from integrations.registry import get_provider

    spec = get_provider(provider)
    return spec is not None and applies_to(spec)


def fingerprint(provider: str, credentials: dict[str, str]) -> str:
    """A keyed one-way digest of the credentials (Django's salted HMAC over SECRET_KEY): equal for the same key,
    different for a new one, and useless to anyone reading the database."""
    material = "\x1f".join(f"{name}={credentials[name]}" for name in sorted(credentials))
    return salted_hmac("integrations.key_fingerprint", f"{provider}\x1e{material}", algorithm="sha256").hexdigest()


def reported_flags(body: dict, names: tuple[str, ...]) -> dict:
    """The venue's own words about a key, limited to the documented fields we read (nothing else is stored)."""
    return {name: body[name] for name in names if name in body}


def is_known(permissions) -> bool:
    return isinstance(permissions, dict) and all(isinstance(permissions.get(k), bool) for k in MONEY_MOVING)


def refusal(spec: Provider, permissions, *, trade_only_fix: str) -> tuple[ErrorCode, str] | None:
    """Why verify must fail for these permissions, or None. ``trade_only_fix`` says, in the venue's own terms, how
    to make a key that passes."""
    if not isinstance(permissions, dict):
        return None
    powers = [name.removeprefix("can_") for name in MONEY_MOVING if permissions.get(name) is True]
    if powers:
        source = permissions.get("source") or "the venue"
        return (
            ErrorCode.INTEGRATION_KEY_TOO_POWERFUL,
            f"{spec.label} reports ({source}) that this key can {' and '.join(powers)} funds. {trade_only_fix}",
        )
    if permissions.get("can_trade") is False:
        return (
            ErrorCode.INTEGRATION_AUTH_FAILED,
            f"The {spec.label} key cannot trade. Create a key with trading permission and enter it in admin.",
        )
    return None


# --- owner confirmation of a key whose permissions the venue cannot report ----------------------------------


def latest_verification(provider: str) -> IntegrationVerification | None:
    return IntegrationVerification.objects.filter(provider=provider).order_by("-verified_at", "-id").first()


def valid_confirmation(verification: IntegrationVerification) -> KeyPermissionConfirmation | None:
    """The owner's confirmation that still holds for this verification's key: given for the same key and the same
    reported permissions, and not voided since by a verification that read another key or other permissions."""
    if not verification.key_fingerprint:
        return None
    confirmation = (
        KeyPermissionConfirmation.objects.filter(
            provider=verification.provider,
            key_fingerprint=verification.key_fingerprint,
            permissions=verification.permissions,
        )
        .order_by("-confirmed_at", "-id")
        .first()
    )
    if confirmation is None:
        return None
    since = IntegrationVerification.objects.filter(
        provider=verification.provider, verified_at__gt=confirmation.confirmed_at
    )
    voided = (
        since.exclude(key_fingerprint="").exclude(key_fingerprint=verification.key_fingerprint).exists()
        or since.filter(permissions__isnull=False).exclude(permissions=verification.permissions).exists()
    )
    return None if voided else confirmation


def confirmation_state(verification: IntegrationVerification | None) -> str | None:
    """For the console and the status rows: ``not_needed`` (the venue reported the key), ``confirmed``,
    ``needed``, or None when there is nothing to say (no successful verification with permissions)."""
    if verification is None or verification.status != IntegrationVerification.Status.OK:
        return None
    if is_known(verification.permissions):
        return "not_needed"
    return "confirmed" if valid_confirmation(verification) else "needed"


def live_blocker(spec: Provider, role: str) -> dict | None:
    """What keeps a connected venue from a LIVE start because of its key's permissions, or None.

    Called after the connection check passed, so the latest verification succeeded (a key that can withdraw
    failed it with INTEGRATION_KEY_TOO_POWERFUL and is blocked there)."""
    if not applies_to(spec):
        return None
    verification = latest_verification(spec.provider)
    if verification is None or verification.status != IntegrationVerification.Status.OK:
        return None
    permissions = verification.permissions
    if is_known(permissions):
        return None
    if permissions is None:  # verified before permissions were read: nothing is known about this key
        return {
            "provider": spec.provider,
            "code": str(ErrorCode.INTEGRATION_UNVERIFIED),
            "missing_env_vars": [],
            "message": f"{spec.label} ({role}) was verified before key permissions were checked.",
            "suggested_fix": ErrorCode.INTEGRATION_UNVERIFIED.suggested_fix,
        }
    if valid_confirmation(verification):
        return None
    code = ErrorCode.INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED
    return {
        "provider": spec.provider,
        "code": str(code),
        "missing_env_vars": [],
        "message": f"{spec.label} ({role}) cannot report whether its key can withdraw or transfer funds, and no "
        "owner has confirmed that this key is trade-only.",
        "suggested_fix": code.suggested_fix,
    }
