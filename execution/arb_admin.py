"""The scanners' record in the observatory: ``arb_spreads`` and ``arb_pnl``, read-only (written only by
execution.arbitrage), scoped by RLS to the tenant in the header. Imported by execution/admin.py."""

from django.contrib import admin

from controlplane.admin import BoundedCountPaginator, ObservatoryAdmin
from execution.models import ArbPnl, ArbSpread


@admin.register(ArbSpread)
class ArbSpreadAdmin(ObservatoryAdmin):
    list_display = (
        "scanned_at",
        "bot",
        "instrument",
        "buy_venue",
        "sell_venue",
        "gross_spread_bps",
        "net_edge_bps",
        "executable_size",
        "acted",
        "why_not",
    )
    list_filter = ("acted", "context", "instrument", "buy_venue", "sell_venue")
    list_select_related = ("bot",)
    raw_id_fields = ("bot", "intent")
    search_fields = ("trace_id", "instrument")
    show_full_result_count = False
    paginator = BoundedCountPaginator


@admin.register(ArbPnl)
class ArbPnlAdmin(ObservatoryAdmin):
    list_display = (
        "intent",
        "bot",
        "book",
        "instrument",
        "buy_venue",
        "sell_venue",
        "intent_status",
        "realized_edge",
        "realized_edge_bps",
        "expected_edge_bps",
        "edge_shortfall_bps",
    )
    list_filter = ("book", "intent_status", "instrument")
    list_select_related = ("bot",)
    raw_id_fields = ("bot", "intent", "spread")
