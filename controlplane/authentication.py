"""API token authentication with brute force throttled on the failure path.

Throttling every request would cap honest clients; throttling failures only caps guessing. Admin (form) logins are
guarded by django-axes instead (settings ``AXES_*``): it locks an account and IP pair, which a token has no
account to pair with.
"""

from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from controlplane.throttling import FailedAuthenticationThrottle


class FailureThrottledMixin:
    """Refuse credentials from an IP that has failed too often recently (429 RATE_LIMITED with Retry-After)."""

    def authenticate(self, request):
        if not get_authorization_header(request):
            return super().authenticate(request)  # no credentials offered: nothing to guess
        throttle = FailedAuthenticationThrottle()
        wait = throttle.wait_seconds(request)
        if wait is not None:
            raise exceptions.Throttled(wait, detail="Too many failed authentication attempts from this address.")
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise


class DigestTokenAuthentication(TokenAuthentication):
    """knox's digest comparison; a token that is not UTF-8 is an invalid token (401), not a 500."""

    def authenticate_credentials(self, token):
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class ThrottledTokenAuthentication(FailureThrottledMixin, DigestTokenAuthentication):
    pass
