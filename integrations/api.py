"""The integrations API: status, verify, proof of use, the keys checklist, and owner-only credential entry."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.models import Membership
from controlplane.status import freshness
from controlplane.trace import current_trace_id
from integrations import checklist, services
from integrations.models import IntegrationUsageEvent
from integrations.registry import provider_names


class IntegrationStatusView(APIView):
    """One row per provider; a provider never verified is not connected. Its proof-of-use counts come with
    ``as_of`` and ``degraded``."""

    def get(self, request):
        return Response({"providers": checklist.provider_status_rows(), **freshness(), "trace_id": current_trace_id()})


class VerifyRequestSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=provider_names(), required=False)
    all = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        if bool(attrs.get("provider")) == bool(attrs.get("all")):
            raise serializers.ValidationError({"provider": ["Give either provider or all: true."]})
        return attrs


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
        "trace_id": verification.trace_id,
    }


class VerifyView(APIView):
    """Run a real, non-destructive check of one provider (or every configured one) and store the result."""

    @extend_schema(request=VerifyRequestSerializer)
    def post(self, request):
        payload = VerifyRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if payload.validated_data.get("all"):
            results = [services.verify_provider(provider=name, actor=request.user)
                       for name in services.configured_providers()]
            return Response({"results": [_verification_body(v) for v in results], "trace_id": current_trace_id()})
        verification = services.verify_provider(provider=payload.validated_data["provider"], actor=request.user)
        return Response(_verification_body(verification))


class UsageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = IntegrationUsageEvent
        fields = ["id", "provider", "operation", "status", "error_code", "latency_ms", "bot_id", "trace_id",
                  "created_at"]


class UsageQuerySerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=provider_names(), required=False)
    bot_id = serializers.IntegerField(required=False, min_value=1)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)


class UsageView(APIView):
    """The latest proof-of-use events, newest first, with ``as_of`` and ``degraded``."""

    @extend_schema(parameters=[OpenApiParameter("provider", str), OpenApiParameter("bot_id", int),
                               OpenApiParameter("limit", int)], responses=UsageEventSerializer(many=True))
    def get(self, request):
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = IntegrationUsageEvent.objects.all()
        if query.validated_data.get("provider"):
            events = events.filter(provider=query.validated_data["provider"])
        if query.validated_data.get("bot_id"):
            events = events.filter(bot_id=query.validated_data["bot_id"])
        events = events.order_by("-created_at", "-id")[: query.validated_data["limit"]]
        return Response({"events": UsageEventSerializer(events, many=True).data, **freshness(),
                         "trace_id": current_trace_id()})


class KeysNeededView(APIView):
    """The Keys Needed checklist: every key, set or missing, its source, what it unlocks and how to fix it."""

    def get(self, request):
        return Response({**checklist.keys_needed(), "trace_id": current_trace_id()})


class CredentialsSetSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=provider_names())
    values = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=True))


class CredentialsView(APIView):
    """Owners set a provider's credentials; the answer says only what is set (never a value)."""

    required_role = Membership.Role.OWNER

    @extend_schema(request=CredentialsSetSerializer)
    def post(self, request):
        payload = CredentialsSetSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rows = services.credentials_set(**payload.validated_data, actor=request.user)
        return Response({
            "provider": payload.validated_data["provider"],
            "set": [{"name": r.name, "last4": r.last4, "set_by": request.user.get_username(), "set_at": r.set_at}
                    for r in rows],
            "trace_id": current_trace_id(),
        }, status=201)


class CredentialDetailView(APIView):
    required_role = Membership.Role.OWNER

    def delete(self, request, provider: str, name: str):
        services.credential_clear(provider=provider, name=name, actor=request.user)
        return Response(status=204)
