from django.contrib import admin
from django.utils import timezone
from unfold.contrib.filters.admin import RangeDateTimeFilter, TextFilter
from unfold.utils import parse_datetime_str

from controlplane.admin import BoundedCountPaginator, ObservatoryAdmin
from controlplane.links import admin_link
from traces.models import ProfitVariables, TickTrace


class TimeframeFilter(TextFilter):
    """The timeframe typed in (exact), not a list of the values present: listing them is a SELECT DISTINCT over
    every trace of the tenant (200 ms at a million rows, bench/observatory_pages.py), on every page view."""

    title = "timeframe"
    parameter_name = "timeframe"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        return queryset.filter(timeframe=value) if value else queryset


class BarTimeFilter(RangeDateTimeFilter):
    """From/to bar time, read in the console's time zone as aware datetimes (unfold's own filter passes naive ones,
    which Django takes in the same zone but warns about on every use). An entry that does not parse filters
    nothing, as unfold's does."""

    def queryset(self, request, queryset):
        bounds = {}
        for end, lookup in (("from", "gte"), ("to", "lte")):
            day, at = (self.used_parameters.get(f"{self.parameter_name}_{end}_{part}") for part in (0, 1))
            if day and at:
                value = parse_datetime_str(f"{day} {at}")
                if value is None:
                    return None
                bounds[f"{self.parameter_name}__{lookup}"] = timezone.make_aware(value)
        return queryset.filter(**bounds)


@admin.register(TickTrace)
class TickTraceAdmin(ObservatoryAdmin):
    list_display = (
        "bar_ts",
        "bot_link",
        "instrument",
        "timeframe",
        "kind",
        "reason_code",
        "intent_link",
        "context",
        "trace_id_link",
    )
    # The bot and the intent as links to their pages, not bare ids (traces sits below both: reached by URL name).
    readonly_fields = [
        {"bot_id": "bot_link", "intent_id": "intent_link"}.get(f.name, f.name) for f in TickTrace._meta.fields
    ]
    # Bar time as a from/to range rather than a date hierarchy: the hierarchy's drill-down links cost a MIN/MAX and
    # a SELECT DISTINCT date_trunc over every trace of the tenant on each page view (about 210 ms at a million
    # rows); the range filter runs no query until it is used.
    list_filter = ("kind", "reason_code", "context", TimeframeFilter, ("bar_ts", BarTimeFilter))
    list_filter_submit = True
    search_fields = ("trace_id", "instrument", "=bot_id")
    show_full_result_count = False
    paginator = BoundedCountPaginator

    def get_exclude(self, request, obj=None):
        return [*(super().get_exclude(request, obj) or ()), "bot_id", "intent_id"]

    @admin.display(description="bot", ordering="bot_id")
    def bot_link(self, obj):
        return admin_link("admin:bots_bot_change", obj.bot_id)

    @admin.display(description="intent")
    def intent_link(self, obj):
        return admin_link("admin:execution_tradeintent_change", obj.intent_id)


@admin.register(ProfitVariables)
class ProfitVariablesAdmin(ObservatoryAdmin):
    """Per bot, book and UTC day, kept by the OMS from fills: what autonomy scoring and the daily loss limit read."""

    list_display = (
        "day",
        "bot_link",
        "book",
        "pnl",
        "fees",
        "slippage",
        "turnover",
        "exposure",
        "fills",
        "closing_trades",
        "win_rate",
    )
    list_filter = ("book", "day")
    search_fields = ("=bot_id",)
    date_hierarchy = "day"

    @admin.display(description="bot", ordering="bot_id")
    def bot_link(self, obj):
        return admin_link("admin:bots_bot_change", obj.bot_id)
