"""The console's admin site with django-otp's second factor (OTPAdminSite's semantics, kept kind to users without a
device): whoever has a confirmed device logs in with username, password and a code, and a session that did not
verify one is not let in; a user without a device logs in as before unless one of their tenants requires 2FA, and
then reaches nothing but the enrolment page (controlplane/enrolment.py) until they have enrolled.

Django builds the default admin site (``admin.site``) lazily from ``controlplane.apps.ConsoleAdminConfig``.
"""

from __future__ import annotations

from django import forms
from django.shortcuts import redirect
from unfold.forms import AuthenticationForm
from unfold.sites import UnfoldAdminSite
from unfold.widgets import BASE_INPUT_CLASSES

from controlplane import twofactor
from controlplane.errors import ControlPlaneError

ENROLMENT_PATH = "/admin/two-factor/"
# What a member who must enrol may still reach: enrolment itself, logging in and out, the admin's JS catalogue.
_OPEN_WHILE_ENROLLING = (ENROLMENT_PATH, "/admin/login/", "/admin/logout/", "/admin/jsi18n/")


class ConsoleLoginForm(AuthenticationForm):
    """The admin login with one more field, asked of users who have a device. unfold's login template draws only
    username and password, so templates/admin/login.html draws this one too."""

    otp_token = forms.CharField(
        required=False,
        label=twofactor.CODE_LABEL,
        help_text="Only if you enrolled one: the 6 digits of your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "spellcheck": "false", "class": " ".join(BASE_INPUT_CLASSES)}
        ),
    )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is None or not twofactor.has_otp_device(user):
            return cleaned
        code = cleaned.get("otp_token", "")
        if not twofactor.normalise_code(code):
            raise forms.ValidationError(
                "This account uses two-factor authentication: enter the code from your authenticator app, or one of "
                "your backup codes.",
                code="token_required",
            )
        try:
            device = twofactor.verify_otp(user, code)
        except ControlPlaneError as exc:  # too many wrong codes
            raise forms.ValidationError(f"{exc.message} {exc.suggested_fix}", code="throttled") from None
        if device is None:
            raise forms.ValidationError(
                "That authenticator or backup code is not valid (wrong, expired or already used).", code="invalid_token"
            )
        user.otp_device = device  # django_otp.login (on user_logged_in) keeps it in the session
        return cleaned


class ConsoleAdminSite(UnfoldAdminSite):
    """unfold's site (settings load "unfold.apps.BasicAppConfig", which leaves ``admin.site`` to Django's admin
    config, controlplane.apps.ConsoleAdminConfig, instead of replacing it with a plain UnfoldAdminSite)."""

    login_form = ConsoleLoginForm

    def has_permission(self, request):
        """OTPAdminSite's rule for users with a device (``is_verified()``); users without one as before."""
        if not super().has_permission(request):
            return False
        if not hasattr(request, "_second_factor_ok"):  # asked several times per page; read the devices once
            verified = getattr(request.user, "is_verified", None)
            request._second_factor_ok = bool(verified and verified()) or not twofactor.has_otp_device(request.user)
        return request._second_factor_ok


class TwoFactorEnrolmentMiddleware:
    """Sends a member of a tenant that requires 2FA, who has no device yet, to enrolment from every console page.
    Runs inside the request's transaction (after TenantTransactionMiddleware), where their memberships are
    readable."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        user = getattr(request, "user", None)
        if (
            path.startswith("/admin/")
            and not path.startswith(_OPEN_WHILE_ENROLLING)
            and user is not None
            and user.is_authenticated
            and twofactor.user_must_enrol(user)
        ):
            return redirect(ENROLMENT_PATH)
        return self.get_response(request)
