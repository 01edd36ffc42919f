"""Market data in the observatory: instruments (superusers edit them, through the service) and bars (read-only)."""

from django.contrib import admin

from controlplane.admin import FixedCountPaginator, ObservatoryAdmin
from execution.models import Bar, Instrument
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
