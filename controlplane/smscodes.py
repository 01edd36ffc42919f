"""SMS codes: the spec's ``send-2fa-code`` / ``verify-2fa-code``, and the round trip that verifies a phone number.

A code is six random digits, stored only as an HMAC-SHA256 under ``TWO_FACTOR_SMS_CODE_SECRET`` (bound to the
user, the purpose and the number), valid for ``TWO_FACTOR_SMS_CODE_TTL_SECONDS``, consumed by its first match and
dead after ``TWO_FACTOR_SMS_MAX_ATTEMPTS`` wrong guesses. Sends are limited per user and per client IP. Wrong
guesses and sends are counted in Redis (controlplane/throttling.py), not in the code's row: an API call that fails
rolls its transaction back, and a count kept there would be rolled back with it.

The text leaves through the declared hook ``sms.send`` (the tenant's own Twilio account, in integrations): the
core sends no HTTP itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane import hooks
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import SmsCode, UserPhone
from controlplane.services import audit_record
from controlplane.throttling import KeyedRateLimit, SecondFactorFailureThrottle, user_ident

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
CODE_DIGITS = 6


def masked(number: str) -> str:
    return f"…{number[-4:]}"


def _digest(*, user_id: int, purpose: str, number: str, code: str) -> str:
    message = f"{user_id}\x1f{purpose}\x1f{number}\x1f{code}".encode()
    return hmac.new(settings.TWO_FACTOR_SMS_CODE_SECRET.encode(), message, hashlib.sha256).hexdigest()


def _limited(limit: KeyedRateLimit, what: str) -> None:
    wait = limit.wait_seconds(None)
    if wait is not None:
        raise ControlPlaneError(
            ErrorCode.RATE_LIMITED, f"Too many SMS codes sent {what}; none is sent now.", retry_after=wait
        )


def _send(*, user, purpose: str, number: str, tenant_id: int | None, client_ip: str | None) -> SmsCode:
    if tenant_id is None:
        raise ControlPlaneError(
            ErrorCode.NO_TENANT_MEMBERSHIP,
            "SMS codes are sent with a tenant's SMS provider, and this request has no tenant.",
            suggested_fix="Pick a tenant (X-Tenant, or the console's tenant switcher) whose Twilio keys are set.",
        )
    per_user = KeyedRateLimit("sms_send_user", user_ident(user), settings.TWO_FACTOR_SMS_SEND_RATE_USER)
    per_ip = KeyedRateLimit("sms_send_ip", client_ip or "unknown", settings.TWO_FACTOR_SMS_SEND_RATE_IP)
    _limited(per_user, "to this user")
    _limited(per_ip, "from this address")
    per_user.record_failure(None)  # counts a send: the limit is on sends, granted or not by Twilio
    per_ip.record_failure(None)
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    now = timezone.now()
    row = SmsCode.objects.create(
        user=user,
        purpose=purpose,
        number=number,
        code_hash=_digest(user_id=user.pk, purpose=purpose, number=number, code=code),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.TWO_FACTOR_SMS_CODE_TTL_SECONDS),
    )
    minutes = max(1, settings.TWO_FACTOR_SMS_CODE_TTL_SECONDS // 60)
    what = "verification" if purpose == SmsCode.Purpose.STEP_UP else "phone verification"
    body = f"Your control plane {what} code is {code}. It expires in {minutes} min. Never share it."
    row.provider_message_id = hooks.hook("sms.send")(tenant_id=tenant_id, to=number, body=body)
    row.save(update_fields=["provider_message_id"])
    return row


def send_step_up_code(*, user, tenant_id: int | None, client_ip: str | None) -> SmsCode:
    """A code to the user's verified phone (``POST /api/auth/2fa/send``)."""
    phone = UserPhone.objects.filter(user=user, verified_at__isnull=False).first()
    if phone is None:
        raise ControlPlaneError(
            ErrorCode.CONFLICT,
            "You have no verified phone number to send a code to.",
            suggested_fix="Add and verify one: POST /api/auth/phone with the number, then POST /api/auth/phone/verify "
            "with the code it receives (or in the console: Two-factor authentication).",
        )
    return _send(
        user=user, purpose=SmsCode.Purpose.STEP_UP, number=phone.number, tenant_id=tenant_id, client_ip=client_ip
    )


def check_code(*, user, purpose: str, code: str) -> SmsCode:
    """Consume the user's newest live code of ``purpose`` if ``code`` matches it; otherwise raise VALIDATION_ERROR
    saying whether there was no live code (expired, used, never sent, or too many guesses) or a wrong one."""
    failures = SecondFactorFailureThrottle(user)
    wait = failures.wait_seconds(None)
    if wait is not None:
        raise ControlPlaneError(
            ErrorCode.RATE_LIMITED, "Too many wrong second-factor codes for this user.", retry_after=wait
        )
    code = "".join((code or "").split())
    now = timezone.now()
    with transaction.atomic():
        row = (
            SmsCode.objects.select_for_update()
            .filter(user=user, purpose=purpose, used_at__isnull=True, expires_at__gt=now)
            .order_by("-created_at", "-id")
            .first()
        )
        attempts = (
            KeyedRateLimit(
                "sms_code_attempts", f"{row.pk}-{row.code_hash[:16]}", f"{settings.TWO_FACTOR_SMS_MAX_ATTEMPTS}/86400s"
            )
            if row
            else None
        )
        if row is None or attempts.wait_seconds(None) is not None:
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR,
                "No SMS code is waiting: it expired, was used, had too many wrong guesses, or was never sent.",
                suggested_fix="Send a new code and enter it within its lifetime.",
                details={"code": ["no live code"]},
            )
        expected = row.code_hash
        given = _digest(user_id=user.pk, purpose=purpose, number=row.number, code=code)
        if hmac.compare_digest(expected, given):
            row.used_at = now
            row.save(update_fields=["used_at"])
            return row
    attempts.record_failure(None)
    failures.record_failure(None)
    raise ControlPlaneError(
        ErrorCode.VALIDATION_ERROR,
        "That SMS code is wrong.",
        suggested_fix="Enter the six digits of the latest text, or send a new code.",
        details={"code": ["wrong"]},
    )


# --- The phone number --------------------------------------------------------------------------------------------


def phone_set(*, user, number: str, tenant_id: int | None, client_ip: str | None = None) -> UserPhone:
    """Set the user's number (unverified until its code comes back) and text it a verification code."""
    number = "".join(number.split())
    if not E164.match(number):
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            "The phone number must be in E.164 form: + then the country code and number, digits only.",
            details={"number": ["not E.164, e.g. +15551234567"]},
        )
    with transaction.atomic():
        phone, _ = UserPhone.objects.select_for_update().get_or_create(user=user, defaults={"number": number})
        before = {"number": masked(phone.number), "verified": phone.verified_at is not None}
        if phone.number != number or phone.verified_at is None:
            phone.number, phone.verified_at = number, None
            phone.save(update_fields=["number", "verified_at", "updated_at"])
            # Codes already sent went to the number being replaced: none of them may still step up or verify.
            SmsCode.objects.filter(user=user, used_at__isnull=True).delete()
        audit_record(
            action="two_factor.phone.set",
            resource_type="user_phone",
            resource_id=user.pk,
            actor=user,
            before=before,
            after={"number": masked(number), "verified": phone.verified_at is not None},
        )
        if phone.verified_at is None:
            _send(
                user=user, purpose=SmsCode.Purpose.VERIFY_PHONE, number=number, tenant_id=tenant_id, client_ip=client_ip
            )
    return phone


def phone_verify(*, user, code: str) -> UserPhone:
    """The code texted to the new number came back: the number is verified."""
    row = check_code(user=user, purpose=SmsCode.Purpose.VERIFY_PHONE, code=code)
    with transaction.atomic():
        phone = UserPhone.objects.select_for_update().filter(user=user, number=row.number).first()
        if phone is None:
            raise ControlPlaneError(
                ErrorCode.CONFLICT,
                "The number this code was sent to is no longer yours on record.",
                suggested_fix="Set the number again and enter the new code.",
            )
        phone.verified_at = timezone.now()
        phone.save(update_fields=["verified_at", "updated_at"])
        audit_record(
            action="two_factor.phone.verify",
            resource_type="user_phone",
            resource_id=user.pk,
            actor=user,
            after={"number": masked(phone.number), "verified": True},
        )
    return phone
