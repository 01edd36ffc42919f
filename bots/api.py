"""The lifecycle API: thin views that validate, call a service and respond."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bots import services
from bots.models import Bot, Job, Runner
from bots.serializers import (
    BotSerializer,
    BotWriteSerializer,
    GlobalKillSwitchSerializer,
    JobCreateSerializer,
    JobSerializer,
    KillSerializer,
    RunnerSerializer,
    RunnerStartSerializer,
    RunnerStopSerializer,
    StageChangeSerializer,
    StarterPackSerializer,
    TenantKillSwitchSerializer,
    UnkillSerializer,
)
from bots.strategies import available_strategies
from controlplane.filters import FilterSet
from controlplane.models import Membership
from controlplane.permissions import IsSuperuser
from controlplane.stepup import require_step_up


def _valid(serializer_class, request, partial: bool = False) -> dict:
    payload = serializer_class(data=request.data, partial=partial)
    payload.is_valid(raise_exception=True)
    return payload.validated_data


class BotFilter(FilterSet):
    class Meta:
        model = Bot
        fields = ["stage", "strategy", "venue", "data_source", "killed", "reconcile_mismatch"]


class BotListCreateView(generics.ListAPIView):
    serializer_class = BotSerializer
    filterset_class = BotFilter

    def get_queryset(self):
        return Bot.objects.all()

    @extend_schema(request=BotWriteSerializer, responses={201: BotSerializer})
    def post(self, request):
        bot = services.bot_create(actor=request.user, **_valid(BotWriteSerializer, request))
        return Response(BotSerializer(bot).data, status=201)


class BotDetailView(generics.RetrieveAPIView):
    serializer_class = BotSerializer

    def get_queryset(self):
        return Bot.objects.all()

    @extend_schema(request=BotWriteSerializer, responses=BotSerializer)
    def patch(self, request, pk: int):
        bot = self.get_object()
        payload = BotWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        # An unknown field was refused by the serializer (controlplane.serializers.RefuseUnknownFields).
        changes = {name: payload.validated_data[name] for name in request.data if name in payload.validated_data}
        bot = services.bot_update(bot_id=bot.id, actor=request.user, changes=changes)
        return Response(BotSerializer(bot).data)


class _BotActionView(APIView):
    def bot_id(self, pk: int) -> int:
        return generics.get_object_or_404(Bot.objects.all(), pk=pk).id


class BotDemoteView(_BotActionView):
    @extend_schema(request=StageChangeSerializer, responses=BotSerializer)
    def post(self, request, pk: int):
        data = _valid(StageChangeSerializer, request)
        bot = services.bot_demote(
            bot_id=self.bot_id(pk), actor=request.user, to_stage=data.get("to"), reason=data["reason"]
        )
        return Response(BotSerializer(bot).data)


class BotKillView(_BotActionView):
    @extend_schema(request=KillSerializer, responses=BotSerializer)
    def post(self, request, pk: int):
        bot = services.bot_kill(bot_id=self.bot_id(pk), actor=request.user, **_valid(KillSerializer, request))
        return Response(BotSerializer(bot).data)


class BotUnkillView(_BotActionView):
    required_role = Membership.Role.OWNER

    @extend_schema(request=UnkillSerializer, responses=BotSerializer)
    def post(self, request, pk: int):
        bot_id, data = self.bot_id(pk), _valid(UnkillSerializer, request)
        require_step_up(request, action=f"Unkilling bot {bot_id}")
        bot = services.bot_unkill(bot_id=bot_id, actor=request.user, **data)
        return Response(BotSerializer(bot).data)


class StarterPackView(APIView):
    @extend_schema(request=None, responses={200: StarterPackSerializer, 201: StarterPackSerializer})
    def post(self, request):
        created, existing = services.starter_pack_install(actor=request.user)
        return Response(
            StarterPackSerializer({"created": created, "existing": existing}).data, status=201 if created else 200
        )


class StrategyListView(APIView):
    """The strategy registry: names, descriptions and parameter schemas."""

    @extend_schema(
        responses=inline_serializer(
            "Strategy",
            {
                "name": serializers.CharField(),
                "description": serializers.CharField(),
                "parameters": serializers.ListField(),
            },
            many=True,
        )
    )
    def get(self, request):
        return Response([strategy.schema() for strategy in available_strategies()])


class TenantKillView(APIView):
    @extend_schema(request=KillSerializer, responses=TenantKillSwitchSerializer)
    def post(self, request):
        switch = services.tenant_kill(actor=request.user, **_valid(KillSerializer, request))
        return Response(TenantKillSwitchSerializer(switch).data)


class TenantUnkillView(APIView):
    required_role = Membership.Role.OWNER

    @extend_schema(request=KillSerializer, responses=TenantKillSwitchSerializer)
    def post(self, request):
        data = _valid(KillSerializer, request)
        require_step_up(request, action="Unkilling the tenant")
        switch = services.tenant_unkill(actor=request.user, **data)
        return Response(TenantKillSwitchSerializer(switch).data)


class SystemKillView(APIView):
    permission_classes = [IsSuperuser]

    @extend_schema(request=KillSerializer, responses=GlobalKillSwitchSerializer)
    def post(self, request):
        switch = services.system_kill(actor=request.user, **_valid(KillSerializer, request))
        return Response(GlobalKillSwitchSerializer(switch).data)


class SystemUnkillView(APIView):
    permission_classes = [IsSuperuser]

    @extend_schema(request=KillSerializer, responses=GlobalKillSwitchSerializer)
    def post(self, request):
        data = _valid(KillSerializer, request)
        require_step_up(request, action="Unkilling the platform")
        switch = services.system_unkill(actor=request.user, **data)
        return Response(GlobalKillSwitchSerializer(switch).data)


class RunnerFilter(FilterSet):
    # A plain id: a model-choice filter would build its queryset outside any tenant context.
    bot = django_filters.NumberFilter(field_name="bot_id")

    class Meta:
        model = Runner
        fields = ["status", "bot"]


class RunnerListView(generics.ListAPIView):
    serializer_class = RunnerSerializer
    filterset_class = RunnerFilter

    def get_queryset(self):
        return Runner.objects.all()


class RunnerStartView(APIView):
    @extend_schema(request=RunnerStartSerializer, responses={201: RunnerSerializer})
    def post(self, request):
        payload = _valid(RunnerStartSerializer, request)
        bot_id = generics.get_object_or_404(Bot.objects.all(), pk=payload.pop("bot_id")).id
        runner = services.runner_start(bot_id=bot_id, actor=request.user, **payload)
        return Response(RunnerSerializer(runner).data, status=201)


class _RunnerActionView(APIView):
    def runner_id(self, pk: int) -> int:
        return generics.get_object_or_404(Runner.objects.all(), pk=pk).id


class RunnerStopView(_RunnerActionView):
    @extend_schema(request=RunnerStopSerializer, responses=RunnerSerializer)
    def post(self, request, pk: int):
        runner = services.runner_stop(
            runner_id=self.runner_id(pk), actor=request.user, **_valid(RunnerStopSerializer, request)
        )
        return Response(RunnerSerializer(runner).data)


class RunnerRestartView(_RunnerActionView):
    @extend_schema(request=None, responses=RunnerSerializer)
    def post(self, request, pk: int):
        runner = services.runner_restart(runner_id=self.runner_id(pk), actor=request.user)
        return Response(RunnerSerializer(runner).data)


class JobFilter(FilterSet):
    # A plain id: a model-choice filter would build its queryset outside any tenant context.
    bot = django_filters.NumberFilter(field_name="bot_id")

    class Meta:
        model = Job
        fields = ["kind", "status", "bot"]


class JobListCreateView(generics.ListAPIView):
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self):
        return Job.objects.all()

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def post(self, request):
        data = _valid(JobCreateSerializer, request)
        bot_id = data.get("bot_id")
        if bot_id is not None:
            bot_id = generics.get_object_or_404(Bot.objects.all(), pk=bot_id).id
        job = services.job_create(kind=data["kind"], actor=request.user, bot_id=bot_id, params=data["params"])
        return Response(JobSerializer(job).data, status=201)


class JobDetailView(generics.RetrieveAPIView):
    serializer_class = JobSerializer

    def get_queryset(self):
        return Job.objects.all()


class _JobActionView(APIView):
    def job_id(self, pk: int) -> int:
        return generics.get_object_or_404(Job.objects.all(), pk=pk).id


class JobCancelView(_JobActionView):
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, pk: int):
        return Response(JobSerializer(services.job_cancel(job_id=self.job_id(pk), actor=request.user)).data)


class JobRetryView(_JobActionView):
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, pk: int):
        return Response(JobSerializer(services.job_retry(job_id=self.job_id(pk), actor=request.user)).data)
