"""The second factor: django-otp's TOTP devices and static backup codes, enrolment, and the tenant setting that
requires them. Step-up (a fresh factor before a dangerous act) is controlplane/stepup.py; SMS codes are
controlplane/smscodes.py; the console's pages for all of it are controlplane/console.py.

One code field everywhere ("Authenticator code or backup code"): six digits are a TOTP code, anything else a
backup code. django-otp 1.7 no longer tries every device in turn (a wrong guess would count against each one), so
the shape of the code picks the device.
"""

from __future__ import annotations

import base64
import math
from base64 import b32encode

import qrcode
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from qrcode.image.svg import SvgPathImage

from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Membership, StepUp, Tenant, UserPhone
from controlplane.services import audit_record
from controlplane.throttling import SecondFactorFailureThrottle

BACKUP_CODE_COUNT = 10
CODE_LABEL = "Authenticator code or backup code"


def normalise_code(code: str | None) -> str:
    return "".join((code or "").split()).lower()


def confirmed_totp_devices(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True)


def backup_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def has_otp_device(user) -> bool:
    """A confirmed authenticator, or backup codes left: what the console login then asks for."""
    if not getattr(user, "is_authenticated", False):
        return False
    totp = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    static = StaticToken.objects.filter(device__user=OuterRef("pk"), device__confirmed=True)
    return get_user_model()._default_manager.filter(Q(Exists(totp)) | Q(Exists(static)), pk=user.pk).exists()


def has_verified_phone(user) -> bool:
    return UserPhone.objects.filter(user=user, verified_at__isnull=False).exists()


def has_second_factor(user) -> bool:
    return has_otp_device(user) or has_verified_phone(user)


def user_must_enrol(user) -> bool:
    """A member of a tenant that requires 2FA who has no device yet: the console shows them only enrolment."""
    if not getattr(user, "is_authenticated", False):
        return False
    requiring = Membership.unscoped.filter(user=user, tenant__require_two_factor=True).exists()
    return requiring and not has_otp_device(user)


def _too_many_failures(user) -> None:
    wait = SecondFactorFailureThrottle(user).wait_seconds(None)
    if wait is not None:
        raise ControlPlaneError(
            ErrorCode.RATE_LIMITED,
            "Too many wrong second-factor codes for this user; no code is checked until the window passes.",
            suggested_fix=f"Wait {wait} seconds (Retry-After), then enter a current code.",
            retry_after=wait,
        )


def verify_otp(user, code: str | None):
    """The user's django-otp device that accepts ``code`` now, or None. A TOTP code is accepted once (django-otp
    keeps the last time step used); a backup code is deleted by its use. Each wrong code counts against the user in
    Redis (SecondFactorFailureThrottle); past the rate this raises RATE_LIMITED."""
    code = normalise_code(code)
    if not code:
        return None
    _too_many_failures(user)
    with transaction.atomic():
        if code.isdigit() and len(code) == 6:
            devices = confirmed_totp_devices(user).select_for_update()
        else:
            devices = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True)
        device = _first_accepting(devices, code)
        if device is not None:
            return device
    SecondFactorFailureThrottle(user).record_failure(None)
    return None


def _first_accepting(devices, code: str):
    """The first device that accepts ``code``, or None; RATE_LIMITED when every one that might was in django-otp's
    own back-off after a wrong code (1 s, 2 s, 4 s...), since then the code was not even checked."""
    locked_until = []
    for device in devices:
        allowed, why = device.verify_is_allowed()
        if not allowed:
            locked_until.append(why.get("locked_until"))
        elif device.verify_token(code):
            return device
    if locked_until:
        until = max((t for t in locked_until if t is not None), default=None)
        wait = max(1, math.ceil((until - timezone.now()).total_seconds())) if until else 1
        raise ControlPlaneError(
            ErrorCode.RATE_LIMITED,
            "The device is locked for a moment after a wrong code; the code was not checked.",
            suggested_fix=f"Wait {wait} seconds and enter a current code.",
            retry_after=wait,
        )
    return None


def method_of(device) -> str:
    return StepUp.Method.TOTP if isinstance(device, TOTPDevice) else StepUp.Method.STATIC


# --- Enrolment ---------------------------------------------------------------------------------------------------


def totp_enrol_start(*, user) -> TOTPDevice:
    """A new, unconfirmed authenticator (a fresh secret); any earlier unconfirmed one is dropped. It verifies
    nothing until confirmed with a code from the app."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def pending_totp_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()


def totp_secret(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it when typed (base32)."""
    return b32encode(device.bin_key).decode()


def totp_qr_data_uri(device: TOTPDevice) -> str:
    """The provisioning URI as an SVG QR code in a data URI: drawn here, no image service sees the secret."""
    image = qrcode.make(device.config_url, image_factory=SvgPathImage, box_size=8)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


def totp_enrol_confirm(*, user, code: str) -> TOTPDevice:
    """Confirm the pending authenticator with a current code from it; from then on the login asks for a code."""
    code = normalise_code(code)
    _too_many_failures(user)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-id").first()
        if device is None:
            raise ControlPlaneError(
                ErrorCode.CONFLICT,
                "There is no authenticator waiting for confirmation.",
                suggested_fix="Start the enrolment again; it shows a new QR code.",
            )
        if not (code.isdigit() and _first_accepting([device], code)):
            accepted = False
        else:
            accepted = True
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            audit_record(
                action="two_factor.enrol",
                resource_type="otp_device",
                resource_id=device.persistent_id,
                actor=user,
                after={"kind": "totp", "name": device.name},
            )
    if not accepted:
        SecondFactorFailureThrottle(user).record_failure(None)
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            "That code does not match the new authenticator.",
            suggested_fix="Enter the six digits the app shows now (check the phone's clock if it keeps failing).",
            details={"code": ["does not match"]},
        )
    return device


def backup_device(user) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).first()


def backup_codes_generate(*, user) -> list[str]:
    """Fresh backup codes, replacing any left; shown once by the caller, stored as django-otp static tokens."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.select_for_update().get_or_create(
            user=user, name="Backup codes", defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
        audit_record(
            action="two_factor.backup_codes",
            resource_type="otp_device",
            resource_id=device.persistent_id,
            actor=user,
            after={"kind": "static", "codes": len(codes)},
        )
    return codes


def device_remove(*, user, persistent_id: str, code: str) -> None:
    """Remove one of the user's devices; a current code from any of their devices proves it is them."""
    if verify_otp(user, code) is None:
        raise ControlPlaneError(
            ErrorCode.STEP_UP_REQUIRED,
            "Removing a device needs a current authenticator or backup code; the one entered is not valid.",
            details={"code": ["not valid"]},
        )
    with transaction.atomic():
        devices = [*TOTPDevice.objects.filter(user=user), *StaticDevice.objects.filter(user=user)]
        device = next((d for d in devices if d.persistent_id == persistent_id), None)
        if device is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, "You have no such device.")
        audit_record(
            action="two_factor.remove",
            resource_type="otp_device",
            resource_id=persistent_id,
            actor=user,
            before={"kind": "totp" if isinstance(device, TOTPDevice) else "static", "name": device.name},
        )
        device.delete()


def devices_of(user) -> list[dict]:
    rows = [
        {"persistent_id": d.persistent_id, "kind": "Authenticator app", "name": d.name, "detail": ""}
        for d in confirmed_totp_devices(user).order_by("id")
    ]
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        left = device.token_set.count()
        rows.append(
            {
                "persistent_id": device.persistent_id,
                "kind": "Backup codes",
                "name": device.name,
                "detail": f"{left} left",
            }
        )
    return rows


# --- The tenant's setting ----------------------------------------------------------------------------------------


def tenant_security_set(*, tenant_id: int, require_two_factor: bool, actor) -> Tenant:
    """An owner requires (or stops requiring) 2FA of every member: members without a device are sent to enrolment
    by the console until they have one."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        before = tenant.require_two_factor
        if before != require_two_factor:
            tenant.require_two_factor = require_two_factor
            tenant.save(update_fields=["require_two_factor"])
            audit_record(
                action="tenant.security.update",
                resource_type="tenant",
                resource_id=tenant.id,
                actor=actor,
                tenant_id=tenant.id,
                before={"require_two_factor": before},
                after={"require_two_factor": require_two_factor},
            )
    return tenant


def members_without_second_factor(tenant_id: int) -> list[str]:
    """Who a require-2FA setting would send to enrolment now (the console shows it beside the switch)."""
    members = Membership.unscoped.filter(tenant_id=tenant_id).select_related("user")
    return sorted(m.user.get_username() for m in members if not has_otp_device(m.user))
