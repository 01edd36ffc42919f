"""A scanner bot's record over the API: ``arb_pnl`` per intent and the priced pairs of its scans (``arb_spreads``),
paginated like every list, tenant-scoped (another tenant's bot is a 404), each page carrying its freshness."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from bots.models import Bot
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.status import freshness
from execution.arbitrage.selectors import bot_arb_pnl, bot_arb_spreads
from execution.models import ArbPnl, ArbSpread


class ArbPnlSerializer(serializers.ModelSerializer):
    class Meta:
        model = ArbPnl
        fields = [
            "intent_id",
            "spread_id",
            "book",
            "instrument",
            "buy_venue",
            "sell_venue",
            "intent_status",
            "bought_quantity",
            "buy_average_price",
            "sold_quantity",
            "sell_average_price",
            "matched_quantity",
            "unmatched_quantity",
            "fees",
            "realized_edge",
            "realized_edge_bps",
            "expected_edge",
            "expected_edge_bps",
            "edge_shortfall_bps",
            "fills",
            "settled_at",
        ]


class ArbSpreadSerializer(serializers.ModelSerializer):
    class Meta:
        model = ArbSpread
        fields = [
            "id",
            "scanned_at",
            "context",
            "run_ref",
            "instrument",
            "buy_venue",
            "sell_venue",
            "buy_price",
            "sell_price",
            "gross_spread",
            "gross_spread_bps",
            "buy_fee",
            "sell_fee",
            "fee_sources",
            "expected_slippage",
            "net_edge",
            "net_edge_bps",
            "priced_size",
            "quoted_size",
            "executable_size",
            "acted",
            "why_not",
            "intent_id",
            "trace_id",
        ]


class _BotRecordView(generics.ListAPIView):
    """One bot's rows of ``serializer_class``'s model; the schema generator (no request, no bot) gets none."""

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.serializer_class.Meta.model.objects.none()
        return self.records(bot_id=self.bot().id)

    def bot(self) -> Bot:
        bot = Bot.objects.filter(pk=self.kwargs["pk"]).first()
        if bot is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {self.kwargs['pk']} in this tenant.")
        return bot

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data.update(freshness())
        return response


class BotArbPnlView(_BotRecordView):
    """What each of the bot's spot arbitrage intents made once it ended: both legs' fills and fees, the realized
    edge over the matched quantity, and the expected edge of the scan that emitted it. Null fees (a venue that did
    not report one) make the realized edge null: unknown, never zero."""

    serializer_class = ArbPnlSerializer

    records = staticmethod(bot_arb_pnl)

    @extend_schema(responses=ArbPnlSerializer(many=True))
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class BotArbSpreadsView(_BotRecordView):
    """The pairs the bot's scans priced (sell bid above buy ask), newest first, each acted on or why not."""

    serializer_class = ArbSpreadSerializer

    records = staticmethod(bot_arb_spreads)
