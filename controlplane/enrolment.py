"""The console's Two-factor authentication page: enrol an authenticator app (QR code and secret, confirmed by a
code), backup codes (shown once), removing a device (with a current code), the phone number SMS codes go to, and
for owners the tenant's "require 2FA" switch. Every change goes through controlplane.twofactor / smscodes."""

from __future__ import annotations

import django_otp
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from controlplane import smscodes, twofactor
from controlplane.console import ENROLMENT_PATH
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Membership, UserPhone
from controlplane.selectors import console_allows
from controlplane.throttling import client_ident
from controlplane.trace import current_trace_id


def _refused(request, what: str, exc: ControlPlaneError) -> None:
    messages.error(
        request,
        f"{what} refused: {exc.code}: {exc.message} Fix: {exc.suggested_fix} (trace {current_trace_id()})",
        extra_tags="two-factor refused",
    )


def _page(request, **context) -> TemplateResponse:
    user = request.user
    tenant = getattr(request, "tenant", None)
    is_owner = tenant is not None and console_allows(request, Membership.Role.OWNER)
    pending = twofactor.pending_totp_device(user)
    phone = UserPhone.objects.filter(user=user).first()
    return TemplateResponse(
        request,
        "admin/two_factor.html",
        {
            **admin.site.each_context(request),
            "title": "Two-factor authentication",
            "code_label": twofactor.CODE_LABEL,
            "must_enrol": twofactor.user_must_enrol(user),
            "devices": twofactor.devices_of(user),
            "pending": pending,
            "pending_qr": twofactor.totp_qr_data_uri(pending) if pending else None,
            "pending_secret": twofactor.totp_secret(pending) if pending else None,
            "phone": phone,
            "tenant": tenant,
            "is_owner": is_owner,
            "without_factor": twofactor.members_without_second_factor(tenant.id) if is_owner else [],
            **context,
        },
    )


def two_factor_page(request):
    if request.method == "GET":
        return _page(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    user, step = request.user, request.POST.get("step", "")
    try:
        if step == "start":
            twofactor.totp_enrol_start(user=user)
        elif step == "confirm":
            device = twofactor.totp_enrol_confirm(user=user, code=request.POST.get("code", ""))
            django_otp.login(request, device)  # this session is now verified by the new device
            messages.success(request, "Authenticator app enrolled: the login now asks for its code.")
        elif step == "backup":
            codes = twofactor.backup_codes_generate(user=user)
            if not getattr(request.user, "otp_device", None):
                django_otp.login(request, twofactor.backup_device(user))
            return _page(request, new_backup_codes=codes)
        elif step == "remove":
            twofactor.device_remove(
                user=user, persistent_id=request.POST.get("device", ""), code=request.POST.get("code", "")
            )
            messages.success(request, "Device removed.")
        elif step == "phone":
            smscodes.phone_set(
                user=user,
                number=request.POST.get("number", ""),
                tenant_id=_tenant_id(request),
                client_ip=client_ident(request),
            )
            messages.success(request, "A code was sent to that number: enter it below to verify it.")
        elif step == "phone_verify":
            smscodes.phone_verify(user=user, code=request.POST.get("code", ""))
            messages.success(request, "Phone number verified: SMS codes can now be sent to it.")
        elif step == "require":
            if not console_allows(request, Membership.Role.OWNER):
                raise ControlPlaneError(ErrorCode.PERMISSION_DENIED, "Only an owner sets this.")
            required = request.POST.get("require_two_factor") == "on"
            twofactor.tenant_security_set(tenant_id=request.tenant.id, require_two_factor=required, actor=user)
            messages.success(request, f"Two-factor authentication is {'now' if required else 'no longer'} required.")
    except ControlPlaneError as exc:
        _refused(request, "Two-factor authentication", exc)
    return redirect(ENROLMENT_PATH)


def _tenant_id(request) -> int | None:
    tenant = getattr(request, "tenant", None)
    return tenant.id if tenant else None
