"""Admin pages of funding arbitrage (imported by execution.admin): funding positions with their payments, read
only (state changes go through execution.arbitrage.funding_services)."""

from __future__ import annotations

from django.contrib import admin

from controlplane.admin import ObservatoryAdmin, ReadOnlyInline
from controlplane.links import admin_link
from execution.funding_models import FundingPayment, FundingPosition


class FundingPaymentInline(ReadOnlyInline):
    model = FundingPayment
    fields = ("funding_at", "rate", "mark", "mark_at", "quantity", "amount", "trace_id")


@admin.register(FundingPosition)
class FundingPositionAdmin(ObservatoryAdmin):
    list_display = (
        "id",
        "bot_link",
        "book",
        "instrument",
        "spot_venue",
        "perp_venue",
        "direction",
        "quantity",
        "status",
        "opened_at",
        "closed_at",
        "close_reason",
    )
    list_filter = ("status", "book", "direction", "perp_venue")
    list_select_related = ("bot", "instrument")
    search_fields = ("bot__name", "instrument__symbol", "=id")
    inlines = (FundingPaymentInline,)

    @admin.display(description="bot", ordering="bot_id")
    def bot_link(self, obj):
        return admin_link("admin:bots_bot_change", obj.bot_id, obj.bot.name)


@admin.register(FundingPayment)
class FundingPaymentAdmin(ObservatoryAdmin):
    list_display = ("position", "funding_at", "rate", "mark", "quantity", "amount", "trace_id_link")
    search_fields = ("trace_id",)
    list_select_related = ("position",)
    date_hierarchy = "funding_at"
