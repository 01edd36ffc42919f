"""The backtests API: thin views that validate, call a service and respond."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backtests import lab, matrices, services
from backtests.models import BacktestMatrix, BacktestRun, ClassificationSettings, GapPolicy, LabExperiment, MatrixResult
from backtests.selectors import ranked_results
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.serializers import WriteSerializer


class BacktestCreateSerializer(WriteSerializer):
    bot_id = serializers.IntegerField(required=False)
    strategy = serializers.CharField(required=False)
    parameters = serializers.DictField(required=False)
    instruments = serializers.ListField(child=serializers.CharField(), required=False)
    timeframe = serializers.CharField(required=False, help_text="Defaults to the bot's timeframe with bot_id.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    fill_model = serializers.DictField(required=False)
    starting_capital = serializers.DecimalField(
        max_digits=20, decimal_places=2, required=False, default=Decimal("100000")
    )
    gap_policy = serializers.ChoiceField(choices=GapPolicy.choices, required=False, default=GapPolicy.REFUSE)

    def validate(self, attrs):
        if "bot_id" not in attrs and not attrs.get("strategy"):
            raise serializers.ValidationError({"strategy": ["Give a strategy or a bot_id."]})
        if "bot_id" not in attrs and not attrs.get("instruments"):
            raise serializers.ValidationError({"instruments": ["Give at least one instrument."]})
        if "bot_id" not in attrs and not attrs.get("timeframe"):
            raise serializers.ValidationError({"timeframe": ["Give a timeframe or a bot_id."]})
        return attrs


class BacktestRunSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = BacktestRun
        fields = [
            "id",
            "bot",
            "job",
            "purpose",
            "strategy",
            "parameters",
            "parameters_hash",
            "instruments",
            "timeframe",
            "range_start",
            "range_end",
            "fill_model",
            "starting_capital",
            "gap_policy",
            "status",
            "progress",
            "bars_done",
            "bars_total",
            "engine_path",
            "gaps",
            "metrics",
            "classification",
            "classification_reasons",
            "no_trade_counts",
            "equity_curve",
            "trades",
            "error_code",
            "error_message",
            "trace_id",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

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
        return Response(
            BacktestRunSerializer(services.run_or_matrix_cancel(model=BacktestRun, pk=pk, actor=request.user)).data
        )


class ThresholdsSerializer(WriteSerializer):
    thresholds = serializers.DictField()


class ThresholdsAnswerSerializer(ThresholdsSerializer):
    overrides = serializers.DictField(help_text="The tenant's own values; the defaults fill the rest.")


class ThresholdsView(APIView):
    """The tenant's classification thresholds: the defaults with its overrides applied."""

    @extend_schema(responses={200: ThresholdsAnswerSerializer})
    def get(self, request):
        row = ClassificationSettings.objects.first()
        return Response(
            {"thresholds": services.tenant_thresholds().as_dict(), "overrides": row.thresholds if row else {}}
        )

    @extend_schema(request=ThresholdsSerializer, responses={200: ThresholdsAnswerSerializer})
    def put(self, request):
        payload = ThresholdsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        row = services.thresholds_update(actor=request.user, overrides=payload.validated_data["thresholds"])
        return Response({"thresholds": services.tenant_thresholds().as_dict(), "overrides": row.thresholds})


class MatrixCreateSerializer(WriteSerializer):
    strategy = serializers.CharField()
    base_parameters = serializers.DictField(required=False, default=dict)
    space = serializers.DictField()
    mode = serializers.ChoiceField(choices=["grid", "random"])
    samples = serializers.IntegerField(required=False, allow_null=True, default=None)
    seed = serializers.IntegerField(required=False, default=0)
    instruments = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=20)
    timeframe = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    split_at = serializers.DateTimeField()
    walk_forward_folds = serializers.IntegerField(required=False, default=0, min_value=0)
    fill_model = serializers.DictField(required=False, default=dict)
    starting_capital = serializers.DecimalField(
        max_digits=20, decimal_places=2, required=False, default=Decimal("100000")
    )


class MatrixResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = MatrixResult
        fields = [
            "index",
            "parameters",
            "parameters_hash",
            "classification",
            "score",
            "scored_trades",
            "enough_trades",
            "in_sample",
            "out_of_sample",
            "walk_forward",
            "folds",
            "classification_reasons",
        ]


class DroppedSetSerializer(serializers.Serializer):
    parameters = serializers.DictField()
    reason = serializers.CharField()


class DroppedSetsSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Combinations of the space that do not run.")
    by_reason = serializers.DictField(child=serializers.IntegerField(), help_text="How many for each reason.")
    examples = DroppedSetSerializer(
        many=True,
        help_text="The first dropped combinations, each with its reason "
        "(at most backtests.matrices.MAX_DROPPED_EXAMPLES).",
    )


class MatrixSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    sets_dropped = DroppedSetsSerializer(
        allow_null=True, help_text="None for a matrix from before drops were recorded."
    )

    class Meta:
        model = BacktestMatrix
        fields = [
            "id",
            "strategy",
            "base_parameters",
            "space",
            "mode",
            "samples",
            "seed",
            "instruments",
            "timeframe",
            "range_start",
            "range_end",
            "split_at",
            "walk_forward_folds",
            "fill_model",
            "starting_capital",
            "status",
            "progress",
            "sets_requested",
            "sets_total",
            "sets_dropped",
            "sets_done",
            "folds_total",
            "folds_done",
            "chunks_total",
            "chunks_done",
            "error_code",
            "error_message",
            "trace_id",
            "created_by",
            "created_at",
            "finished_at",
        ]

    def get_progress(self, matrix) -> float | None:
        if matrix.folds_total:
            return round(matrix.folds_done / matrix.folds_total, 4)
        return round(matrix.sets_done / matrix.sets_total, 4) if matrix.sets_total else None


def _ranked(matrix) -> list:
    return [{"rank": n + 1, **MatrixResultSerializer(r).data} for n, r in enumerate(ranked_results(matrix))]


class RankedMatrixResultSerializer(MatrixResultSerializer):
    rank = serializers.IntegerField()

    class Meta(MatrixResultSerializer.Meta):
        fields = ["rank", *MatrixResultSerializer.Meta.fields]


class MatrixDetailSerializer(MatrixSerializer):
    results = RankedMatrixResultSerializer(
        many=True,
        help_text="Results with enough out-of-sample trades (the "
        "classification's min_trades) first, then by score, best first.",
    )

    class Meta(MatrixSerializer.Meta):
        fields = [*MatrixSerializer.Meta.fields, "results"]


class MatrixListCreateView(generics.ListAPIView):
    serializer_class = MatrixSerializer

    def get_queryset(self):
        return BacktestMatrix.objects.all()

    @extend_schema(request=MatrixCreateSerializer, responses={201: MatrixSerializer})
    def post(self, request):
        payload = MatrixCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        matrix = matrices.matrix_create(actor=request.user, **payload.validated_data)
        return Response(MatrixSerializer(matrix).data, status=201)


class MatrixDetailView(APIView):
    """Progress and the results ranked by out-of-sample Sharpe (with walk-forward folds: the folds' mean), in-sample
    and out-of-sample side by side."""

    @extend_schema(responses={200: MatrixDetailSerializer})
    def get(self, request, pk: int):
        matrix = BacktestMatrix.objects.filter(pk=pk).first()
        if matrix is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No matrix {pk} in this tenant.")
        return Response({**MatrixSerializer(matrix).data, "results": _ranked(matrix)})


class MatrixCancelView(APIView):
    @extend_schema(request=None, responses={200: MatrixSerializer})
    def post(self, request, pk: int):
        return Response(
            MatrixSerializer(services.run_or_matrix_cancel(model=BacktestMatrix, pk=pk, actor=request.user)).data
        )


class LabExperimentSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabExperiment
        fields = [
            "id",
            "name",
            "hypothesis",
            "strategy",
            "instruments",
            "timeframe",
            "parameter_space",
            "mode",
            "samples",
            "range_start",
            "range_end",
            "split_at",
            "status",
            "matrix",
            "shortlist",
            "created_by",
            "created_at",
            "updated_at",
        ]


class LabCreateSerializer(WriteSerializer):
    name = serializers.CharField(max_length=200)
    hypothesis = serializers.CharField()
    strategy = serializers.CharField()
    instruments = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=20)
    timeframe = serializers.CharField()
    parameter_space = serializers.DictField()
    mode = serializers.ChoiceField(choices=["grid", "random"], default="grid")
    samples = serializers.IntegerField(required=False, allow_null=True, default=None)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    split_at = serializers.DateTimeField()


class ShortlistSerializer(WriteSerializer):
    indexes = serializers.ListField(child=serializers.IntegerField(min_value=0), min_length=1)


class CreateBotSerializer(WriteSerializer):
    index = serializers.IntegerField(min_value=0)
    name = serializers.CharField(max_length=200)


class LabCreatedBotSerializer(LabExperimentSerializer):
    bot_id = serializers.IntegerField(help_text="The bot created from the chosen result.")

    class Meta(LabExperimentSerializer.Meta):
        fields = [*LabExperimentSerializer.Meta.fields, "bot_id"]


class LabListCreateView(generics.ListAPIView):
    serializer_class = LabExperimentSerializer

    def get_queryset(self):
        return LabExperiment.objects.all()

    @extend_schema(request=LabCreateSerializer, responses={201: LabExperimentSerializer})
    def post(self, request):
        payload = LabCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        experiment = lab.experiment_create(actor=request.user, **payload.validated_data)
        return Response(LabExperimentSerializer(experiment).data, status=201)


class LabDetailView(generics.RetrieveAPIView):
    serializer_class = LabExperimentSerializer

    def get_queryset(self):
        return LabExperiment.objects.all()


class LabRunView(APIView):
    @extend_schema(request=None, responses={200: LabExperimentSerializer})
    def post(self, request, pk: int):
        return Response(LabExperimentSerializer(lab.experiment_run(experiment_id=pk, actor=request.user)).data)


class LabShortlistView(APIView):
    @extend_schema(request=ShortlistSerializer, responses={200: LabExperimentSerializer})
    def post(self, request, pk: int):
        payload = ShortlistSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        experiment = lab.experiment_shortlist(experiment_id=pk, actor=request.user, **payload.validated_data)
        return Response(LabExperimentSerializer(experiment).data)


class LabCreateBotView(APIView):
    @extend_schema(request=CreateBotSerializer, responses={201: LabCreatedBotSerializer})
    def post(self, request, pk: int):
        payload = CreateBotSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        experiment, bot = lab.experiment_create_bot(experiment_id=pk, actor=request.user, **payload.validated_data)
        return Response({**LabExperimentSerializer(experiment).data, "bot_id": bot.id}, status=201)
