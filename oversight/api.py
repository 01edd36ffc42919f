"""The judging layer's API: promotion, reconcile, autonomy scores and system status. Thin views that validate,
call a service and respond; the URLs sit beside the bots' own (/api/bots/{id}/promote, ...)."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backtests.models import AutonomyScore
from bots.models import Bot
from bots.serializers import (
    BotSerializer,
    GlobalKillSwitchSerializer,
    KillSerializer,
    TenantKillSwitchSerializer,
    UnkillSerializer,
    ReconcileResolutionSerializer,
    ReconcileResolveSerializer,
    ReconciliationSerializer,
    StageChangeSerializer,
)
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Membership
from controlplane.serializers import WriteSerializer
from controlplane.openapi import PROVIDER_CALL, STATUS_LEVELS, FreshnessSerializer
from controlplane.status import freshness, probe_database
from controlplane.stepup import require_step_up
from controlplane.permissions import IsSuperuser
from oversight import autonomy, promotion, rearm, reconcile
from oversight.models import SupervisorPolicy
from oversight.supervisor import thresholds
from oversight.status import database_down_status, system_status


def _valid(serializer_class, request) -> dict:
    payload = serializer_class(data=request.data)
    payload.is_valid(raise_exception=True)
    return payload.validated_data


class _BotActionView(APIView):
    def bot_id(self, pk: int) -> int:
        return generics.get_object_or_404(Bot.objects.all(), pk=pk).id


class BotPromoteView(_BotActionView):
    @extend_schema(request=StageChangeSerializer, responses=BotSerializer)
    def post(self, request, pk: int):
        data = _valid(StageChangeSerializer, request)
        bot = promotion.bot_promote_by_request(request, bot_id=self.bot_id(pk), to_stage=data.get("to"))
        return Response(BotSerializer(bot).data)


class BotUnkillView(_BotActionView):
    required_role = Membership.Role.OWNER

    @extend_schema(request=UnkillSerializer, responses=BotSerializer)
    def post(self, request, pk: int):
        bot_id, data = self.bot_id(pk), _valid(UnkillSerializer, request)
        require_step_up(request, action=f"Unkilling bot {bot_id}")
        bot = rearm.bot_rearm(bot_id=bot_id, actor=request.user, **data)
        return Response(BotSerializer(bot).data)


class LiveBotNotFlatSerializer(serializers.Serializer):
    tenant_id = serializers.IntegerField()
    bot_id = serializers.IntegerField()
    name = serializers.CharField()
    venue = serializers.CharField()
    killed = serializers.BooleanField(help_text="Killed on its own: the tenant or platform unkill leaves it killed.")
    positions = serializers.DictField(child=serializers.CharField(), help_text="Our live book, per instrument.")
    latest_reconciliation = serializers.DictField(allow_null=True, help_text="Null: never reconciled.")
    why = serializers.CharField()


class TenantUnkillAnswerSerializer(TenantKillSwitchSerializer):
    live_bots_not_flat = LiveBotNotFlatSerializer(many=True)

    class Meta(TenantKillSwitchSerializer.Meta):
        fields = [*TenantKillSwitchSerializer.Meta.fields, "live_bots_not_flat"]


class SystemUnkillAnswerSerializer(GlobalKillSwitchSerializer):
    live_bots_not_flat = LiveBotNotFlatSerializer(many=True)

    class Meta(GlobalKillSwitchSerializer.Meta):
        fields = [*GlobalKillSwitchSerializer.Meta.fields, "live_bots_not_flat"]


def _with_not_flat(serializer_class, switch, not_flat: list[dict]) -> dict:
    switch.live_bots_not_flat = not_flat
    return serializer_class(switch).data


class TenantUnkillView(APIView):
    """Re-arm the tenant: bots killed one by one stay killed; the answer lists the LIVE bots not known flat."""

    required_role = Membership.Role.OWNER

    @extend_schema(request=KillSerializer, responses=TenantUnkillAnswerSerializer)
    def post(self, request):
        data = _valid(KillSerializer, request)
        require_step_up(request, action="Unkilling the tenant")
        switch, not_flat = rearm.tenant_rearm(actor=request.user, **data)
        return Response(_with_not_flat(TenantUnkillAnswerSerializer, switch, not_flat))


class SystemUnkillView(APIView):
    """Re-arm the platform: tenant switches and bot kills stay; the answer lists every tenant's LIVE bots not
    known flat."""

    permission_classes = [IsSuperuser]

    @extend_schema(request=KillSerializer, responses=SystemUnkillAnswerSerializer)
    def post(self, request):
        data = _valid(KillSerializer, request)
        require_step_up(request, action="Unkilling the platform")
        switch, not_flat = rearm.system_rearm(actor=request.user, **data)
        return Response(_with_not_flat(SystemUnkillAnswerSerializer, switch, not_flat))


class ReconciliationAnswerSerializer(FreshnessSerializer, ReconciliationSerializer):
    """A reconcile report with ``freshness()``."""

    class Meta(ReconciliationSerializer.Meta):
        fields = [*ReconciliationSerializer.Meta.fields, *FreshnessSerializer().fields]


class ReconcileResolutionAnswerSerializer(FreshnessSerializer, ReconcileResolutionSerializer):
    """A resolution and its follow-up reconcile, with ``freshness()``."""


class BotReconcileView(_BotActionView):
    """Compare the bot's positions with the venue's; the positions come with ``as_of`` and ``degraded``."""

    error_statuses = PROVIDER_CALL  # the venue's positions are read while the request waits

    @extend_schema(request=None, responses=ReconciliationAnswerSerializer)
    def post(self, request, pk: int):
        result = reconcile.bot_reconcile(bot_id=self.bot_id(pk), actor=request.user)
        return Response({**ReconciliationSerializer(result).data, **freshness()})


class BotReconcileResolveView(_BotActionView):
    """Resolve a mismatch and reconcile again; the reports' positions come with ``as_of`` and ``degraded``."""

    error_statuses = PROVIDER_CALL  # the follow-up reconcile reads the venue's positions

    @extend_schema(request=ReconcileResolveSerializer, responses=ReconcileResolutionAnswerSerializer)
    def post(self, request, pk: int):
        bot_id = self.bot_id(pk)
        resolved, followup = reconcile.bot_reconcile_resolve(
            bot_id=bot_id, actor=request.user, **_valid(ReconcileResolveSerializer, request)
        )
        return Response(
            {**ReconcileResolutionSerializer({"resolved": resolved, "followup": followup}).data, **freshness()}
        )


class AutonomySerializer(serializers.ModelSerializer):
    class Meta:
        model = AutonomyScore
        fields = ["id", "bot", "tier", "score", "breakdown", "gates", "trigger", "trace_id", "computed_at"]


class AutonomyAnswerSerializer(AutonomySerializer):
    """GET's answer: the latest score, or for a bot never scored the same fields, null but its tier, with a
    message (one shape, so a client reads ``id`` and ``score`` either way)."""

    id = serializers.IntegerField(allow_null=True)
    score = serializers.FloatField(allow_null=True)
    breakdown = serializers.JSONField(allow_null=True)
    gates = serializers.JSONField(allow_null=True)
    trigger = serializers.CharField(allow_null=True)
    trace_id = serializers.CharField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    message = serializers.CharField(allow_null=True, help_text="Set while the bot has never been scored.")

    class Meta(AutonomySerializer.Meta):
        fields = [*AutonomySerializer.Meta.fields, "message"]


class BotAutonomyView(APIView):
    """GET: the bot's latest autonomy score (tier, breakdown, each gate with its value); POST: score it now."""

    def _bot(self, pk: int) -> Bot:
        bot = Bot.objects.filter(pk=pk).first()
        if bot is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {pk} in this tenant.")
        return bot

    @extend_schema(responses={200: AutonomyAnswerSerializer})
    def get(self, request, pk: int):
        bot = self._bot(pk)
        latest = AutonomyScore.objects.filter(bot=bot).first()
        if latest is None:
            return Response(
                {
                    "id": None,
                    "bot": bot.id,
                    "tier": bot.autonomy_tier,
                    "score": None,
                    "breakdown": None,
                    "gates": None,
                    "trigger": None,
                    "trace_id": None,
                    "computed_at": None,
                    "message": "Not scored yet; POST to this URL to score it now.",
                }
            )
        return Response({**AutonomySerializer(latest).data, "message": None})

    @extend_schema(request=None, responses={201: AutonomySerializer})
    def post(self, request, pk: int):
        self._bot(pk)
        score = autonomy.autonomy_compute(bot_id=pk, trigger=AutonomyScore.Trigger.ON_DEMAND, actor=request.user)
        return Response(AutonomySerializer(score).data, status=201)


class StatusIssueSerializer(serializers.Serializer):
    code = serializers.CharField()
    component = serializers.CharField()
    message = serializers.CharField()
    suggested_fix = serializers.CharField()
    severity = serializers.ChoiceField(choices=["blocking", "degrading"])


class SystemStatusSerializer(serializers.Serializer):
    """``oversight.status.system_status``; scheduler, integrations and bots are that module's (README)."""

    status = serializers.ChoiceField(choices=STATUS_LEVELS)
    autonomy_allowed = serializers.BooleanField()
    blockers = StatusIssueSerializer(many=True)
    # Null while the database is down: what it holds is unknown, not empty.
    bots = serializers.DictField(allow_null=True)
    scheduler = serializers.DictField(allow_null=True)
    # The supervisor's heartbeat (oversight.supervisor.heartbeat.supervisor_heartbeat).
    supervisor = serializers.DictField(allow_null=True)
    # The quote collector's heartbeat (oversight.status.quote_collector_state); null for a tenant using no crypto
    # venue, and while the database is down.
    quote_collector = serializers.DictField(allow_null=True, required=False)
    integrations = serializers.DictField(allow_null=True)
    checked_at = serializers.DateTimeField()
    trace_id = serializers.CharField()


class SystemStatusView(APIView):
    """BLOCKED, DEGRADED or OK for the request's tenant, with every blocker and its fix; never OK by default.

    With the database down nobody can be authenticated (tokens and memberships live there), so the answer is the
    platform's: BLOCKED with the database as its only blocker, to anyone who asks, like /api/health. Otherwise the
    request runs in one transaction as every other does (``request_transaction`` is off only so that the middleware
    does not answer 503 before this view has probed the database)."""

    request_transaction = False

    def dispatch(self, request, *args, **kwargs):
        problem = probe_database()
        if problem is not None:
            return JsonResponse(database_down_status(problem), encoder=DjangoJSONEncoder)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    @extend_schema(responses=SystemStatusSerializer)
    def get(self, request):
        return Response(system_status())


class SupervisorThresholdsSerializer(WriteSerializer):
    overrides = serializers.DictField(help_text="Threshold name -> number; names and bounds in the README.")
    effective = serializers.DictField(read_only=True)
    defaults = serializers.DictField(read_only=True)


class SupervisorThresholdsView(APIView):
    """The supervisor's thresholds for this tenant: the settings' defaults, the owner's overrides and the effective
    values. PUT replaces the overrides (validated whole: a bad field is a 400 naming it and nothing is saved)."""

    required_role = Membership.Role.OWNER

    def _answer(self, request):
        tenant_id = tenancy.require_tenant_id()
        policy = SupervisorPolicy.objects.filter(tenant_id=tenant_id).first()
        return {
            "overrides": policy.overrides if policy else {},
            "effective": thresholds.tenant_thresholds(tenant_id),
            "defaults": thresholds.defaults(),
        }

    @extend_schema(responses=SupervisorThresholdsSerializer)
    def get(self, request):
        return Response(self._answer(request))

    @extend_schema(request=SupervisorThresholdsSerializer, responses=SupervisorThresholdsSerializer)
    def put(self, request):
        payload = SupervisorThresholdsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        require_step_up(request, action="Changing the supervisor's thresholds")
        thresholds.supervisor_thresholds_set(overrides=payload.validated_data["overrides"], actor=request.user)
        return Response(self._answer(request))
