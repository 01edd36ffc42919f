"""The backtests API: thin views that validate, call a service and respond."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backtests import services
from backtests.models import BacktestRun, ClassificationSettings, GapPolicy


class BacktestCreateSerializer(serializers.Serializer):
    bot_id = serializers.IntegerField(required=False)
    strategy = serializers.CharField(required=False)
    parameters = serializers.DictField(required=False)
    instruments = serializers.ListField(child=serializers.CharField(), required=False)
    timeframe = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    fill_model = serializers.DictField(required=False)
    starting_capital = serializers.DecimalField(max_digits=20, decimal_places=2, required=False,
                                                default=Decimal("100000"))
    gap_policy = serializers.ChoiceField(choices=GapPolicy.choices, required=False, default=GapPolicy.REFUSE)

    def validate(self, attrs):
        if "bot_id" not in attrs and not attrs.get("strategy"):
            raise serializers.ValidationError({"strategy": ["Give a strategy or a bot_id."]})
        if "bot_id" not in attrs and not attrs.get("instruments"):
            raise serializers.ValidationError({"instruments": ["Give at least one instrument."]})
        return attrs


class BacktestRunSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = BacktestRun
        fields = ["id", "bot", "job", "result", "purpose", "strategy", "parameters", "parameters_hash",
                  "instruments", "timeframe", "range_start", "range_end", "fill_model", "starting_capital",
                  "gap_policy", "status", "progress", "bars_done", "bars_total", "engine_path", "gaps", "metrics",
                  "classification", "classification_reasons", "no_trade_counts", "equity_curve", "trades",
                  "error_code", "error_message", "trace_id", "created_by", "created_at", "started_at",
                  "finished_at"]

    def get_progress(self, run) -> float | None:
        return round(run.bars_done / run.bars_total, 4) if run.bars_total else None


class BacktestRunListSerializer(BacktestRunSerializer):
    class Meta(BacktestRunSerializer.Meta):
        fields = [f for f in BacktestRunSerializer.Meta.fields if f not in ("equity_curve", "trades")]


class BacktestListCreateView(generics.ListAPIView):
    serializer_class = BacktestRunListSerializer
    filterset_fields = ["status", "bot", "strategy"]

    def get_queryset(self):
        return BacktestRun.objects.all()

    @extend_schema(request=BacktestCreateSerializer, responses={201: BacktestRunSerializer})
    def post(self, request):
        payload = BacktestCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        run = services.backtest_create(actor=request.user, **payload.validated_data)
        return Response(BacktestRunSerializer(run).data, status=201)


class BacktestDetailView(generics.RetrieveAPIView):
    serializer_class = BacktestRunSerializer

    def get_queryset(self):
        return BacktestRun.objects.all()


class BacktestCancelView(APIView):
    @extend_schema(request=None, responses={200: BacktestRunSerializer})
    def post(self, request, pk: int):
        return Response(BacktestRunSerializer(services.backtest_cancel(run_id=pk, actor=request.user)).data)


class ThresholdsSerializer(serializers.Serializer):
    thresholds = serializers.DictField()


class ThresholdsView(APIView):
    """The tenant's classification thresholds: the defaults with its overrides applied."""

    @extend_schema(responses={200: ThresholdsSerializer})
    def get(self, request):
        row = ClassificationSettings.objects.first()
        return Response({"thresholds": services.tenant_thresholds().as_dict(),
                         "overrides": row.thresholds if row else {}})

    @extend_schema(request=ThresholdsSerializer, responses={200: ThresholdsSerializer})
    def put(self, request):
        payload = ThresholdsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        row = services.thresholds_update(actor=request.user, overrides=payload.validated_data["thresholds"])
        return Response({"thresholds": services.tenant_thresholds().as_dict(), "overrides": row.thresholds})
