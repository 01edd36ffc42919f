from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from controlplane.admin import BoundedCountPaginator, ObservatoryAdmin
from traces.models import ProfitVariables, TickTrace


@admin.register(TickTrace)
class TickTraceAdmin(ObservatoryAdmin):
    list_display = ("bar_ts", "bot_id", "instrument", "timeframe", "kind", "reason_code", "context", "trace_id_link")
    list_filter = ("kind", "reason_code", "context", "timeframe")
    search_fields = ("trace_id", "instrument", "=bot_id")
    show_full_result_count = False
    paginator = BoundedCountPaginator
    date_hierarchy = "bar_ts"


@admin.register(ProfitVariables)
class ProfitVariablesAdmin(ObservatoryAdmin):
    """Per bot and UTC day, kept by the OMS from fills: what autonomy scoring reads."""

    list_display = ("day", "bot_link", "pnl", "fees", "slippage", "turnover", "exposure", "fills", "closing_trades",
                    "win_rate")
    list_filter = ("day",)
    search_fields = ("=bot_id",)
    date_hierarchy = "day"

    @admin.display(description="bot", ordering="bot_id")
    def bot_link(self, obj):
        # traces sits below bots (no import); the bot's admin page is reached by its URL name.
        return format_html('<a href="{}">{}</a>', reverse("admin:bots_bot_change", args=[obj.bot_id]), obj.bot_id)
