"""Operators' risk controls over the API: trading states of a bot and of the tenant, and risk incidents. Thin:
validate, call the service (execution.marketdata.services), respond. Reads need a viewer, changes an operator."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot
from controlplane.filters import FilterSet
from controlplane.models import Membership
from controlplane.serializers import WriteSerializer
from controlplane.stepup import require_step_up
from execution.models import RiskIncident, TradingStateChoices
from execution.risk.selectors import tenant_risk_limits, trading_state_of
from execution.risk.services import risk_incident_resolve, tenant_risk_limits_set, trading_state_set


class TradingStateSerializer(WriteSerializer):
    scope = serializers.ChoiceField(choices=["bot", "tenant"], read_only=True)
    bot_id = serializers.IntegerField(read_only=True, allow_null=True)
    state = serializers.ChoiceField(choices=TradingStateChoices.choices)
    reason = serializers.CharField(max_length=2000)
    set_by = serializers.CharField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


def _set_state(request, *, bot_id: int | None) -> Response:
    payload = TradingStateSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    trading_state_set(bot_id=bot_id, actor=request.user, **payload.validated_data)
    return Response(TradingStateSerializer(trading_state_of(bot_id=bot_id)).data)


class BotTradingStateView(APIView):
    """The bot's trading state: ACTIVE, REDUCE_ONLY (only orders that shrink exposure pass) or HALTED."""

    @extend_schema(responses=TradingStateSerializer)
    def get(self, request, pk: int):
        bot = generics.get_object_or_404(Bot.objects.all(), pk=pk)
        return Response(TradingStateSerializer(trading_state_of(bot_id=bot.id)).data)

    @extend_schema(request=TradingStateSerializer, responses=TradingStateSerializer)
    def post(self, request, pk: int):
        return _set_state(request, bot_id=pk)


class TenantTradingStateView(APIView):
    """The tenant's trading state, which applies to every bot of the tenant on top of the bot's own."""

    @extend_schema(responses=TradingStateSerializer)
    def get(self, request):
        return Response(TradingStateSerializer(trading_state_of(bot_id=None)).data)

    @extend_schema(request=TradingStateSerializer, responses=TradingStateSerializer)
    def post(self, request):
        return _set_state(request, bot_id=None)


class TenantRiskLimitsSerializer(WriteSerializer):
    risk_limits = serializers.DictField(
        help_text="The tenant's own limits (max_position, max_order_size, max_notional, max_daily_loss, max_drawdown, "
        "max_orders_per_minute, max_cancels_per_minute, allowed_instruments, allowed_sessions, "
        "duplicate_window_seconds); replaces the whole set."
    )
    reason = serializers.CharField(max_length=2000, write_only=True)
    set_by = serializers.CharField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class TenantRiskLimitsView(APIView):
    """The tenant's own risk limits, checked for every order of every bot on top of the bot's. Owners only, and a
    change needs a fresh second factor (X-OTP-Token, or an SMS verify)."""

    required_role = Membership.Role.OWNER

    @extend_schema(responses=TenantRiskLimitsSerializer)
    def get(self, request):
        return Response(TenantRiskLimitsSerializer(tenant_risk_limits()).data)

    @extend_schema(request=TenantRiskLimitsSerializer, responses=TenantRiskLimitsSerializer)
    def put(self, request):
        payload = TenantRiskLimitsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        require_step_up(request, action="Changing the tenant's risk limits")
        tenant_risk_limits_set(actor=request.user, **payload.validated_data)
        return Response(TenantRiskLimitsSerializer(tenant_risk_limits()).data)


class RiskIncidentSerializer(serializers.ModelSerializer):
    class Meta:
        model = RiskIncident
        fields = [
            "id",
            "bot",
            "kind",
            "status",
            "details",
            "intent",
            "opened_at",
            "resolved_at",
            "resolved_by",
            "resolution_note",
            "trace_id",
        ]
        read_only_fields = fields


class RiskIncidentFilter(FilterSet):
    # A plain id: a model-choice filter would build its bot queryset once, outside any tenant (and so empty).
    bot = django_filters.NumberFilter(field_name="bot_id")

    class Meta:
        model = RiskIncident
        fields = ["status", "bot", "kind"]


class RiskIncidentListView(generics.ListAPIView):
    """Risk incidents of the tenant, newest first (filters: ``status``, ``bot``, ``kind``)."""

    serializer_class = RiskIncidentSerializer
    filterset_class = RiskIncidentFilter

    def get_queryset(self):
        return RiskIncident.objects.order_by("-id")


class ResolveSerializer(WriteSerializer):
    note = serializers.CharField(max_length=4000)


class RiskIncidentResolveView(APIView):
    @extend_schema(request=ResolveSerializer, responses=RiskIncidentSerializer)
    def post(self, request, pk: int):
        payload = ResolveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        incident = risk_incident_resolve(incident_id=pk, actor=request.user, note=payload.validated_data["note"])
        return Response(RiskIncidentSerializer(incident).data)
