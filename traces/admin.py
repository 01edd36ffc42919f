from django.contrib import admin

from controlplane.admin import FixedCountPaginator, ObservatoryAdmin
from traces.models import TickTrace


@admin.register(TickTrace)
class TickTraceAdmin(ObservatoryAdmin):
    list_display = ("bar_ts", "bot_id", "instrument", "timeframe", "kind", "reason_code", "context", "trace_id")
    list_filter = ("kind", "reason_code", "context", "timeframe")
    search_fields = ("trace_id", "instrument", "=bot_id")
    readonly_fields = [f.name for f in TickTrace._meta.fields]
    show_full_result_count = False
    paginator = FixedCountPaginator
    date_hierarchy = "bar_ts"
