"""The intents and PnL API: thin views that validate, call the service and respond.

A risk refusal is not an error: the intent is stored REJECTED (with the limit and values) and answered 201 like
any new intent (200 for a replay of the same key and body), so a client reads the outcome from ``status``.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot
from bots.routing import order_book
from controlplane.books import Book
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.filters import FilterSet, IsoDateTimeFilter
from controlplane.openapi import FreshnessSerializer
from controlplane.serializers import WriteSerializer
from controlplane.status import freshness
from execution.models import IntentLeg, Order, TradeIntent
from execution.orders import cancels
from execution.orders.intents import LegSpec, submit_intent
from execution.risk.positions import bot_pnl


class LegSerializer(WriteSerializer):
    venue = serializers.CharField(max_length=64)
    symbol = serializers.CharField(max_length=32)
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity = serializers.DecimalField(max_digits=24, decimal_places=9)
    order_type = serializers.ChoiceField(choices=["market", "limit", "stop"], default="market")
    limit_price = serializers.DecimalField(max_digits=24, decimal_places=9, required=False, allow_null=True)
    stop_price = serializers.DecimalField(max_digits=24, decimal_places=9, required=False, allow_null=True)


class IntentCreateSerializer(WriteSerializer):
    bot = serializers.IntegerField()
    legs = LegSerializer(many=True, allow_empty=False)
    idempotency_key = serializers.CharField(max_length=255, required=False)
    failure_policy = serializers.ChoiceField(
        choices=TradeIntent.FailurePolicy.values, default=TradeIntent.FailurePolicy.CANCEL_REMAINING
    )


class IntentLegOutSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")

    class Meta:
        model = IntentLeg
        fields = ["leg_index", "venue", "symbol", "side", "quantity", "order_type", "limit_price", "stop_price"]


class OrderOutSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")

    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "venue_order_id",
            "purpose",
            "venue",
            "symbol",
            "side",
            "quantity",
            "order_type",
            "status",
            "filled_quantity",
            "average_price",
            "fees",
            "slippage",
            "error_code",
            "reason",
            "created_at",
            "updated_at",
        ]


class IntentSerializer(serializers.ModelSerializer):
    legs = IntentLegOutSerializer(many=True)
    orders = OrderOutSerializer(many=True)

    class Meta:
        model = TradeIntent
        fields = [
            "id",
            "bot",
            "idempotency_key",
            "status",
            "source",
            "bar_ts",
            "failure_policy",
            "rejection",
            "status_detail",
            "risk_checks",
            "legs",
            "orders",
            "created_by",
            "trace_id",
            "created_at",
            "updated_at",
        ]


class IntentFilter(FilterSet):
    # A plain id: a model-choice filter would build its bot queryset once, outside any tenant (and so empty).
    bot = django_filters.NumberFilter(field_name="bot_id")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = TradeIntent
        fields = ["bot", "status", "source", "idempotency_key"]


def _intents():
    return TradeIntent.objects.prefetch_related("legs__instrument", "orders__instrument").order_by("-id")


class IntentListCreateView(generics.ListAPIView):
    serializer_class = IntentSerializer
    filterset_class = IntentFilter

    def get_queryset(self):
        return _intents()

    @extend_schema(
        request=IntentCreateSerializer,
        responses={201: IntentSerializer, 200: IntentSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", location="header", required=False)],
    )
    def post(self, request):
        payload = IntentCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        key = request.headers.get("Idempotency-Key") or data.get("idempotency_key")
        if not key:
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR,
                details={"idempotency_key": ["Send the Idempotency-Key header or the idempotency_key field."]},
            )
        bot = Bot.objects.filter(pk=data["bot"]).first()
        if bot is None:
            raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"bot": [f"No bot {data['bot']} here."]})
        result = submit_intent(
            bot=bot,
            legs=[LegSpec(**leg) for leg in data["legs"]],
            idempotency_key=key,
            source=TradeIntent.Source.API,
            actor=request.user,
            failure_policy=data["failure_policy"],
        )
        intent = _intents().get(pk=result.intent.pk)
        return Response(IntentSerializer(intent).data, status=201 if result.created else 200)


class IntentDetailView(generics.RetrieveAPIView):
    serializer_class = IntentSerializer

    def get_queryset(self):
        return _intents()


class IntentCancelView(APIView):
    @extend_schema(request=None, responses={200: IntentSerializer})
    def post(self, request, pk: int):
        intent = cancels.cancel_intent(intent_id=pk, actor=request.user)
        return Response(IntentSerializer(_intents().get(pk=intent.pk)).data)


class PnlPositionSerializer(serializers.Serializer):
    instrument = serializers.CharField()
    book = serializers.ChoiceField(choices=Book.choices)
    quantity = serializers.CharField()
    average_price = serializers.CharField()
    realized_pnl = serializers.CharField()
    fees = serializers.CharField()
    mark = serializers.CharField(allow_null=True, help_text="Null when no bar marks the position.")
    mark_bar_ts = serializers.DateTimeField(allow_null=True, help_text="The open time of the bar that marks it.")
    mark_timeframe = serializers.CharField(allow_null=True)
    mark_stale = serializers.BooleanField(
        allow_null=True,
        help_text="True when the mark's bar is older than its timeframe's freshness limit (the "
        "tick's DATA_STALE rule): the unrealized PnL is an estimate. Null: no mark.",
    )
    unrealized_pnl = serializers.CharField(allow_null=True)


class PnlDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    pnl = serializers.CharField()
    fees = serializers.CharField()
    slippage = serializers.CharField()
    turnover = serializers.CharField()
    exposure = serializers.CharField()
    fills = serializers.IntegerField()
    closing_trades = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)


class BotPnlSerializer(FreshnessSerializer):
    """``execution.risk.positions.bot_pnl`` with ``freshness()``; amounts are decimal strings, null when unknown."""

    bot_id = serializers.IntegerField()
    book = serializers.ChoiceField(choices=Book.choices, help_text="The book these numbers are of.")
    marked_at = serializers.DateTimeField(help_text="The time the marks were read for.")
    realized_pnl = serializers.CharField()
    fees = serializers.CharField()
    unrealized_pnl = serializers.CharField(allow_null=True)
    total_pnl = serializers.CharField(allow_null=True)
    stale = serializers.BooleanField(help_text="True when any open position is marked at a stale bar.")
    stale_marks = serializers.ListField(child=serializers.CharField(), help_text="The instruments whose mark is stale.")
    positions = PnlPositionSerializer(many=True)
    days = PnlDaySerializer(many=True)


class BotPnlView(APIView):
    """Realized and unrealized PnL of one book (null when a position has no bar to mark it; flagged when its mark
    is stale), per instrument and per day, with how fresh it is and whether the system is degraded
    (``controlplane.status.freshness``). ``?book=paper|live``; by default the book the bot trades in now."""

    @extend_schema(
        responses=BotPnlSerializer,
        parameters=[
            OpenApiParameter(
                "book",
                str,
                enum=Book.values,
                description="paper (sim venue) or live (the bot's venue); default: live for a LIVE bot on a real venue, "
                "paper otherwise.",
            )
        ],
    )
    def get(self, request, bot_id: int):
        bot = Bot.objects.filter(pk=bot_id).first()
        if bot is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {bot_id} in this tenant.")
        book = request.query_params.get("book") or order_book(bot)
        if book not in Book.values:
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR, details={"book": [f"Must be one of {', '.join(Book.values)}."]}
            )
        return Response({**bot_pnl(bot=bot, book=book), **freshness()})
