"""The integrations API: status, verify, proof of use, the keys checklist, owner-only credential entry, and an
owner's confirmation of a venue key whose permissions the venue cannot report."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.models import Membership
from controlplane.openapi import FreshnessSerializer
from controlplane.status import freshness
from controlplane.stepup import require_step_up
from controlplane.trace import current_trace_id
from controlplane.serializers import WriteSerializer
from integrations import checklist, permissions, services
from integrations.models import IntegrationUsageEvent
from integrations.registry import all_providers, provider_names


class IntegrationStatusSerializer(FreshnessSerializer):
    # The rows' own fields are integrations.checklist's (documented in the README); the schema keeps them open.
    providers = serializers.ListField(child=serializers.DictField(), help_text="One row per provider.")
    trace_id = serializers.CharField()


class IntegrationStatusView(APIView):
    """One row per provider; a provider never verified is not connected. Its proof-of-use counts come with
    ``as_of`` and ``degraded``."""

    @extend_schema(responses=IntegrationStatusSerializer)
    def get(self, request):
        return Response({"providers": checklist.provider_status_rows(), **freshness(), "trace_id": current_trace_id()})


class VerifyRequestSerializer(WriteSerializer):
    provider = serializers.ChoiceField(choices=provider_names(), required=False)
    all = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        if bool(attrs.get("provider")) == bool(attrs.get("all")):
            raise serializers.ValidationError({"provider": ["Give either provider or all: true."]})
        return attrs


class VerificationSerializer(serializers.Serializer):
    provider = serializers.CharField()
    status = serializers.CharField()
    latency_ms = serializers.IntegerField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_null=True)
    suggested_fix = serializers.CharField(allow_null=True)
    verified_at = serializers.DateTimeField()
    source = serializers.CharField()
    permissions = serializers.JSONField(
        allow_null=True,
        help_text="Brokers and crypto venues: what the venue said the key may do (an object with can_trade, "
        'can_withdraw, can_transfer, source, reported), or the string "unknown" when its API cannot '
        "tell; null for other providers or a verify that failed before reading them.",
    )
    permissions_confirmation = serializers.ChoiceField(
        choices=["not_needed", "confirmed", "needed"],
        allow_null=True,
        help_text="Whether LIVE needs an owner's confirmation of this key: needed until an owner confirms an "
        "unknown key; null when the verify failed or the provider trades nothing.",
    )
    trace_id = serializers.CharField()


class VerificationsSerializer(serializers.Serializer):
    results = VerificationSerializer(many=True)
    trace_id = serializers.CharField()


def _verification_body(verification) -> dict:
    from controlplane.errors import ErrorCode

    code = verification.error_code or None
    return {
        "provider": verification.provider,
        "status": verification.status,
        "latency_ms": verification.latency_ms,
        "error_code": code,
        "message": verification.message or None,
        "suggested_fix": ErrorCode(code).suggested_fix if code else None,
        "verified_at": verification.verified_at,
        "source": verification.source,
        "permissions": verification.permissions,
        "permissions_confirmation": (
            permissions.confirmation_state(verification) if verification.permissions is not None else None
        ),
        "trace_id": verification.trace_id,
    }


class VerifyView(APIView):
    """Run a real, non-destructive check of one provider (or every configured one) and store the result."""

    @extend_schema(
        request=VerifyRequestSerializer,
        responses=PolymorphicProxySerializer(
            "VerifyAnswer", serializers=[VerificationSerializer, VerificationsSerializer], resource_type_field_name=None
        ),
    )
    def post(self, request):
        payload = VerifyRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if payload.validated_data.get("all"):
            results = [
                services.verify_provider(provider=name, actor=request.user) for name in services.configured_providers()
            ]
            return Response({"results": [_verification_body(v) for v in results], "trace_id": current_trace_id()})
        verification = services.verify_provider(provider=payload.validated_data["provider"], actor=request.user)
        return Response(_verification_body(verification))


class UsageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = IntegrationUsageEvent
        fields = [
            "id",
            "provider",
            "operation",
            "status",
            "error_code",
            "latency_ms",
            "bot_id",
            "trace_id",
            "created_at",
        ]


class UsageQuerySerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=provider_names(), required=False)
    bot_id = serializers.IntegerField(required=False, min_value=1)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)


class UsageSerializer(FreshnessSerializer):
    events = UsageEventSerializer(many=True)
    trace_id = serializers.CharField()


class UsageView(APIView):
    """The latest proof-of-use events, newest first, with ``as_of`` and ``degraded``."""

    @extend_schema(
        parameters=[OpenApiParameter("provider", str), OpenApiParameter("bot_id", int), OpenApiParameter("limit", int)],
        responses=UsageSerializer,
    )
    def get(self, request):
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = IntegrationUsageEvent.objects.all()
        if query.validated_data.get("provider"):
            events = events.filter(provider=query.validated_data["provider"])
        if query.validated_data.get("bot_id"):
            events = events.filter(bot_id=query.validated_data["bot_id"])
        events = events.order_by("-created_at", "-id")[: query.validated_data["limit"]]
        return Response(
            {"events": UsageEventSerializer(events, many=True).data, **freshness(), "trace_id": current_trace_id()}
        )


class KeysNeededSerializer(serializers.Serializer):
    # The groups' and blockers' own fields are integrations.checklist's; the schema keeps them open.
    complete = serializers.BooleanField(help_text="True only when no key a configured capability needs is missing.")
    blockers = serializers.ListField(child=serializers.DictField())
    groups = serializers.ListField(child=serializers.DictField())
    trace_id = serializers.CharField()


class KeysNeededView(APIView):
    """The Keys Needed checklist: every key, set or missing, its source, what it unlocks and how to fix it."""

    @extend_schema(responses=KeysNeededSerializer)
    def get(self, request):
        return Response({**checklist.keys_needed(), "trace_id": current_trace_id()})


class CredentialsSetSerializer(WriteSerializer):
    provider = serializers.ChoiceField(choices=provider_names())
    values = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=True))


class CredentialSetSerializer(serializers.Serializer):
    name = serializers.CharField()
    last4 = serializers.CharField()
    set_by = serializers.CharField()
    set_at = serializers.DateTimeField()


class CredentialsSetAnswerSerializer(serializers.Serializer):
    provider = serializers.CharField()
    set = CredentialSetSerializer(many=True, help_text="What is set now, never a value.")
    trace_id = serializers.CharField()


class CredentialsView(APIView):
    """Owners set a provider's credentials; the answer says only what is set (never a value)."""

    required_role = Membership.Role.OWNER

    @extend_schema(request=CredentialsSetSerializer, responses={201: CredentialsSetAnswerSerializer})
    def post(self, request):
        payload = CredentialsSetSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        provider = payload.validated_data["provider"]
        if permissions.key_change_needs_step_up(provider):
            require_step_up(request, action=f"Entering {provider} keys")
        rows = services.credentials_set(**payload.validated_data, actor=request.user)
        return Response(
            {
                "provider": payload.validated_data["provider"],
                "set": [
                    {"name": r.name, "last4": r.last4, "set_by": request.user.get_username(), "set_at": r.set_at}
                    for r in rows
                ],
                "trace_id": current_trace_id(),
            },
            status=201,
        )


class CredentialDetailView(APIView):
    required_role = Membership.Role.OWNER

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, provider: str, name: str):
        if permissions.key_change_needs_step_up(provider):
            require_step_up(request, action=f"Clearing a {provider} key")
        services.credential_clear(provider=provider, name=name, actor=request.user)
        return Response(status=204)


class ConfirmPermissionsSerializer(WriteSerializer):
    provider = serializers.ChoiceField(
        choices=[p.provider for p in all_providers() if permissions.applies_to(p)],
        help_text='A broker or crypto venue whose last verify stored permissions "unknown".',
    )


class PermissionsConfirmationSerializer(serializers.Serializer):
    provider = serializers.CharField()
    verification_id = serializers.IntegerField(help_text="The verification whose key was confirmed.")
    permissions = serializers.JSONField(help_text='What that verification reported ("unknown").')
    confirmed_by = serializers.CharField()
    confirmed_at = serializers.DateTimeField()
    trace_id = serializers.CharField()


class ConfirmPermissionsView(APIView):
    """An owner confirms that the venue key verified last, whose permissions the venue cannot report, cannot
    withdraw or transfer funds; LIVE starts on that venue wait for this. Audited; a new key voids it."""

    required_role = Membership.Role.OWNER

    @extend_schema(request=ConfirmPermissionsSerializer, responses={201: PermissionsConfirmationSerializer})
    def post(self, request):
        payload = ConfirmPermissionsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        confirmation = services.key_permissions_confirm(provider=payload.validated_data["provider"], actor=request.user)
        return Response(
            {
                "provider": confirmation.provider,
                "verification_id": confirmation.verification_id,
                "permissions": confirmation.permissions,
                "confirmed_by": request.user.get_username(),
                "confirmed_at": confirmation.confirmed_at,
                "trace_id": current_trace_id(),
            },
            status=201,
        )
