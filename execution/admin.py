"""Market data in the observatory: instruments (superusers edit them, through the service), bars and tick batches
(read-only)."""

from django.contrib import admin

from controlplane.admin import FixedCountPaginator, ObservatoryAdmin
from execution.models import Bar, Instrument, TickBatch
from execution.services import instrument_save


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "venue", "asset_class", "tick_size", "multiplier", "calendar", "created_at")
    list_filter = ("asset_class", "venue", "calendar")
    search_fields = ("symbol", "venue")
    readonly_fields = ("created_at",)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        instrument_save(instrument=obj, actor=request.user)


@admin.register(Bar)
class BarAdmin(ObservatoryAdmin):
    list_display = ("ts", "instrument", "timeframe", "open", "high", "low", "close", "volume", "source", "ingested_at")
    list_filter = ("timeframe", "source", "instrument")
    list_select_related = ("instrument",)
    search_fields = ("instrument__symbol",)
    readonly_fields = [f.name for f in Bar._meta.fields]
    raw_id_fields = ("instrument",)
    ordering = ("-ts",)
    show_full_result_count = False
    paginator = FixedCountPaginator


@admin.register(TickBatch)
class TickBatchAdmin(ObservatoryAdmin):
    """What every tick batch did: the first place to look when bots are not trading."""

    list_display = ("as_of", "instrument_symbol", "timeframe", "market_open", "data_problem", "bots", "decisions",
                    "no_trades", "intents_created", "errors", "duration_ms", "trace_id")
    list_filter = ("timeframe", "data_problem", "market_open")
    search_fields = ("instrument_symbol", "trace_id")
    date_hierarchy = "as_of"
    show_full_result_count = False
    paginator = FixedCountPaginator
