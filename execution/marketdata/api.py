"""Market hours over the API: whether an instrument's market is open at a time, and when it opens or closes next."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import ControlPlaneError, ErrorCode
from execution.marketdata.selectors import instrument_by_symbol, market_status


class MarketHoursQuery(serializers.Serializer):
    instrument = serializers.CharField(max_length=32)
    at = serializers.DateTimeField(required=False, help_text="ISO-8601 with offset; default now.")


class MarketHoursSerializer(serializers.Serializer):
    instrument = serializers.CharField()
    calendar = serializers.CharField()
    at = serializers.DateTimeField()
    is_open = serializers.BooleanField()
    always_open = serializers.BooleanField()
    session = serializers.DateField(allow_null=True)
    session_open = serializers.DateTimeField(allow_null=True)
    session_close = serializers.DateTimeField(allow_null=True)
    next_open = serializers.DateTimeField(allow_null=True)
    next_close = serializers.DateTimeField(allow_null=True)


class MarketHoursView(APIView):
    """Whether an instrument's market is open at a time (default now), its session, and the next open and close."""

    @extend_schema(
        parameters=[OpenApiParameter("instrument", str, required=True), OpenApiParameter("at", str)],
        responses={200: MarketHoursSerializer},
    )
    def get(self, request):
        query = MarketHoursQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        symbol = query.validated_data["instrument"]
        instrument = instrument_by_symbol(symbol)
        if instrument is None:
            raise ControlPlaneError(
                ErrorCode.NOT_FOUND,
                f"No instrument {symbol!r}.",
                suggested_fix="Use a symbol listed in admin under Execution > Instruments.",
            )
        at = query.validated_data.get("at") or timezone.now()
        status = market_status(instrument, at)
        return Response(MarketHoursSerializer({"instrument": instrument.symbol, **status.as_dict()}).data)
