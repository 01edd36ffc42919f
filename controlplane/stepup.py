"""Step-up: the one check that a dangerous act (unkill, promotion to LIVE, a broker or venue key, a tenant's risk
limits) comes with a second factor verified in the last ``STEP_UP_MAX_AGE_SECONDS``.

What counts, in this order:

1. a step-up recorded for **the credential of this request** within the max age: the API token it authenticated
   with (knox ``ApiToken``), or else its session (the console, or the API with a session cookie);
2. a valid code presented with this very request: the ``X-OTP-Token`` header (API) or the "Authenticator code"
   field of the console's confirmation (``code=``); a TOTP code or a backup code. It is then recorded for that
   credential, so the next few minutes of work need no new code.

A step-up is bound to the credential that did the verifying, never to the user at large: a code typed in the
console does not unlock the user's API tokens, and an SMS verify made with one token does not unlock another. A
request with neither a token nor a session (nothing to bind to) must present a code each time.

Called at the edge only (API views, console actions). The services stay callable by internal actors: the
supervisor kills, and a management command may unkill, without a human's second factor.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from controlplane import twofactor
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import ApiToken, StepUp

OTP_HEADER = "X-OTP-Token"


def _credential(request) -> dict | None:
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return {"api_token": auth}
    session = getattr(request, "session", None)
    key = session.session_key if session is not None else None
    return {"session_key": key} if key else None


def recent_step_up(request) -> StepUp | None:
    """The newest step-up of this request's credential within the max age, or None."""
    credential = _credential(request)
    if credential is None or not request.user.is_authenticated:
        return None
    cutoff = timezone.now() - timedelta(seconds=settings.STEP_UP_MAX_AGE_SECONDS)
    return StepUp.objects.filter(user=request.user, verified_at__gte=cutoff, **credential).first()


def record_step_up(request, *, method: str) -> StepUp | None:
    """Record that this request's user verified a second factor now, for this request's credential (None when it
    has none to bind to). In the request's transaction: an action that then fails records nothing."""
    credential = _credential(request)
    if credential is None:
        return None
    return StepUp.objects.create(user=request.user, method=method, verified_at=timezone.now(), **credential)


def require_step_up(request, *, action: str, code: str | None = None) -> None:
    """Raise STEP_UP_REQUIRED (403) unless this request's credential stepped up recently or ``code`` (default: the
    ``X-OTP-Token`` header) is a valid code now. ``action`` names the act in the answer."""
    user = request.user
    if recent_step_up(request) is not None:
        return
    if code is None:
        code = request.headers.get(OTP_HEADER, "")
    max_age = settings.STEP_UP_MAX_AGE_SECONDS
    details = {"action": action, "max_age_seconds": max_age, "header": OTP_HEADER}
    if twofactor.normalise_code(code):
        device = twofactor.verify_otp(user, code)
        if device is not None:
            record_step_up(request, method=twofactor.method_of(device))
            return
        raise ControlPlaneError(
            ErrorCode.STEP_UP_REQUIRED,
            f"{action}: the second-factor code is not valid (wrong, expired or already used); nothing was changed.",
            details={**details, "code": ["not valid"]},
        )
    if not twofactor.has_second_factor(user):
        raise ControlPlaneError(
            ErrorCode.STEP_UP_REQUIRED,
            f"{action} needs a second factor, and you have none: enrol one first.",
            suggested_fix="Enrol an authenticator app in the console (Two-factor authentication: /admin/two-factor/), "
            "or verify a phone number (POST /api/auth/phone, then /api/auth/phone/verify), then retry with a code.",
            details={**details, "enrolled": False},
        )
    raise ControlPlaneError(
        ErrorCode.STEP_UP_REQUIRED,
        f"{action} needs a second factor verified in the last {max_age} seconds.",
        details={**details, "enrolled": True},
    )
