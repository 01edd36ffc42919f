"""``GET /api/bots/{id}/basis-pnl``: the bot's funding positions from the ``basis_pnl`` view (entry basis, funding
received, exit basis, fees, total), newest first, paginated like every list, with each position's payments.

Numbers that are not known yet are null, never zero: an open position has no exit basis, no basis PnL and no
total; fees are null when a venue did not report a fill's fee. ``?book=paper|live`` keeps one book; ``?status=``
one status. The page carries ``as_of`` and the degraded flag (``controlplane.status.freshness``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers

from bots.models import Bot
from controlplane.books import Book
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.status import freshness
from execution.funding_models import BasisPnl, FundingPayment, FundingPosition


class FundingPaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = FundingPayment
        fields = ["funding_at", "rate", "mark", "mark_at", "quantity", "amount", "trace_id"]


class BasisPnlSerializer(serializers.ModelSerializer):
    position_id = serializers.IntegerField(source="pk")
    bot = serializers.IntegerField(source="bot_id")
    payments = serializers.SerializerMethodField()

    class Meta:
        model = BasisPnl
        fields = [
            "position_id",
            "bot",
            "book",
            "symbol",
            "spot_venue",
            "perp_venue",
            "direction",
            "status",
            "quantity",
            "entry_basis",
            "exit_basis",
            "basis_pnl",
            "funding_received",
            "funding_payments",
            "fees",
            "total",
            "opened_at",
            "closed_at",
            "payments",
        ]

    @extend_schema_field(FundingPaymentSerializer(many=True))
    def get_payments(self, row) -> list[dict]:
        payments = self.context.get("payments", {}).get(row.pk, [])
        return FundingPaymentSerializer(payments, many=True).data


class BotBasisPnlView(generics.ListAPIView):
    """Basis PnL per funding position of one bot (the ``basis_pnl`` view)."""

    serializer_class = BasisPnlSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator: no request, no bot
            return BasisPnl.objects.none()
        bot = Bot.objects.filter(pk=self.kwargs["pk"]).first()
        if bot is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {self.kwargs['pk']} in this tenant.")
        rows = BasisPnl.objects.filter(bot_id=bot.pk).order_by("-position_id")
        book = self.request.query_params.get("book")
        if book is not None:
            if book not in Book.values:
                raise ControlPlaneError(
                    ErrorCode.VALIDATION_ERROR, details={"book": [f"Must be one of {', '.join(Book.values)}."]}
                )
            rows = rows.filter(book=book)
        status = self.request.query_params.get("status")
        if status is not None:
            if status not in FundingPosition.Status.values:
                raise ControlPlaneError(
                    ErrorCode.VALIDATION_ERROR,
                    details={"status": [f"Must be one of {', '.join(FundingPosition.Status.values)}."]},
                )
            rows = rows.filter(status=status)
        return rows

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        rows = page if page is not None else list(queryset)
        payments: dict[int, list] = {}
        for payment in FundingPayment.objects.filter(position_id__in=[r.pk for r in rows]).order_by("funding_at"):
            payments.setdefault(payment.position_id, []).append(payment)
        self._payments = payments
        return page

    def get_paginated_response(self, data):
        """The page, with when it was measured and whether the system is degraded (DESIGN.md invariant 11)."""
        response = super().get_paginated_response(data)
        response.data = {**response.data, **freshness()}
        return response

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "payments": getattr(self, "_payments", {})}

    @extend_schema(
        parameters=[
            OpenApiParameter("book", str, enum=Book.values, description="paper or live; default: both."),
            OpenApiParameter("status", str, enum=FundingPosition.Status.values),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
