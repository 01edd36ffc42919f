"""The second factor's API: SMS codes (the spec's send-2fa-code / verify-2fa-code), the phone they go to, and the
tenant's "require 2FA" setting. Thin views over controlplane.smscodes and controlplane.twofactor; the step-up a
verify records is bound to the credential of the request (controlplane/stepup.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import smscodes, stepup, twofactor
from controlplane.models import Membership, SmsCode, StepUp
from controlplane.serializers import WriteSerializer
from controlplane.throttling import client_ident
from controlplane.trace import current_trace_id


class CodeSerializer(WriteSerializer):
    code = serializers.CharField(max_length=32, help_text="The six digits of the SMS.")


class PhoneSerializer(WriteSerializer):
    number = serializers.CharField(max_length=32, help_text="E.164: + country code and number, e.g. +15551234567.")


class TenantSecuritySerializer(WriteSerializer):
    require_two_factor = serializers.BooleanField(
        help_text="Every member needs a second factor: the console sends members without one to enrolment."
    )


CodeSentSerializer = inline_serializer(
    "SmsCodeSent",
    {
        "sent_to": serializers.CharField(help_text="The last four digits of the number."),
        "expires_at": serializers.DateTimeField(),
        "trace_id": serializers.CharField(),
    },
)
StepUpSerializer = inline_serializer(
    "StepUpRecorded",
    {
        "method": serializers.CharField(),
        "bound_to": serializers.ChoiceField(choices=["api_token", "session", "this request only"]),
        "valid_until": serializers.DateTimeField(),
        "trace_id": serializers.CharField(),
    },
)
TenantSecurityAnswer = inline_serializer(
    "TenantSecurityAnswer",
    {
        "require_two_factor": serializers.BooleanField(),
        "members_without_second_factor": serializers.ListField(child=serializers.CharField()),
        "trace_id": serializers.CharField(),
    },
)


def _valid(serializer_class, request) -> dict:
    payload = serializer_class(data=request.data)
    payload.is_valid(raise_exception=True)
    return payload.validated_data


def _sent(row: SmsCode) -> Response:
    return Response(
        {"sent_to": smscodes.masked(row.number), "expires_at": row.expires_at, "trace_id": current_trace_id()},
        status=202,
    )


class _MemberView(APIView):
    """Any member may send and verify codes for themselves; the tenant's SMS keys carry the text."""

    required_role = Membership.Role.VIEWER


class SendCodeView(_MemberView):
    @extend_schema(request=None, responses={202: CodeSentSerializer})
    def post(self, request):
        row = smscodes.send_step_up_code(
            user=request.user, tenant_id=request.tenant.id, client_ip=client_ident(request)
        )
        return _sent(row)


class VerifyCodeView(_MemberView):
    @extend_schema(request=CodeSerializer, responses=StepUpSerializer)
    def post(self, request):
        smscodes.check_code(
            user=request.user, purpose=SmsCode.Purpose.STEP_UP, code=_valid(CodeSerializer, request)["code"]
        )
        recorded = stepup.record_step_up(request, method=StepUp.Method.SMS)
        bound_to = "this request only"
        if recorded is not None:
            bound_to = "api_token" if recorded.api_token_id else "session"
        verified_at = recorded.verified_at if recorded else None
        return Response(
            {
                "method": StepUp.Method.SMS,
                "bound_to": bound_to,
                "valid_until": verified_at + timedelta(seconds=settings.STEP_UP_MAX_AGE_SECONDS)
                if verified_at
                else None,
                "trace_id": current_trace_id(),
            }
        )


class PhoneView(_MemberView):
    @extend_schema(request=PhoneSerializer, responses={202: CodeSentSerializer})
    def post(self, request):
        phone = smscodes.phone_set(
            user=request.user,
            number=_valid(PhoneSerializer, request)["number"],
            tenant_id=request.tenant.id,
            client_ip=client_ident(request),
        )
        row = SmsCode.objects.filter(user=request.user, purpose=SmsCode.Purpose.VERIFY_PHONE, number=phone.number)
        return _sent(row.order_by("-created_at", "-id").first())


class PhoneVerifyView(_MemberView):
    @extend_schema(
        request=CodeSerializer,
        responses=inline_serializer(
            "PhoneVerified", {"number": serializers.CharField(), "verified": serializers.BooleanField()}
        ),
    )
    def post(self, request):
        phone = smscodes.phone_verify(user=request.user, code=_valid(CodeSerializer, request)["code"])
        return Response({"number": smscodes.masked(phone.number), "verified": phone.verified_at is not None})


class TenantSecurityView(APIView):
    """Members read it; owners set it (audited)."""

    required_roles = {"PUT": Membership.Role.OWNER}

    def _answer(self, tenant) -> Response:
        return Response(
            {
                "require_two_factor": tenant.require_two_factor,
                "members_without_second_factor": twofactor.members_without_second_factor(tenant.id),
                "trace_id": current_trace_id(),
            }
        )

    @extend_schema(responses=TenantSecurityAnswer)
    def get(self, request):
        return self._answer(request.tenant)

    @extend_schema(request=TenantSecuritySerializer, responses=TenantSecurityAnswer)
    def put(self, request):
        tenant = twofactor.tenant_security_set(
            tenant_id=request.tenant.id,
            require_two_factor=_valid(TenantSecuritySerializer, request)["require_two_factor"],
            actor=request.user,
        )
        return self._answer(tenant)
