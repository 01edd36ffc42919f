"""Execution in the observatory: instruments (superusers edit them, through the service), bars, the arbitrage
market state (quotes, basis, funding, the 1-minute quote history) and tick batches;
per tenant, intents with their legs, orders and fills (written only by the OMS: never added, changed or deleted
here), positions, venue inventory, trading states, risk incidents (resolved through the same service as the API)
and the drawdown breaker's equity marks. All read-only, scoped by RLS to the tenant in the header."""

from django.contrib import admin, messages
from unfold.admin import ModelAdmin
from unfold.decorators import display

from controlplane.admin import BoundedCountPaginator, ObservatoryAdmin, ReadOnlyInline, alarm_text, good_flag
from controlplane.books import Book, book_for_venue, venue_in_book
from controlplane.links import admin_link
from controlplane.errors import ControlPlaneError
from controlplane.trace import current_trace_id
from execution.models import (
    Bar,
    BasisQuote,
    FundingRate,
    QuoteMinute,
    SpotQuote,
    EquityWatermark,
    Fill,
    Instrument,
    IntentLeg,
    Order,
    RiskIncident,
    StrategyPosition,
    TickBatch,
    TradeIntent,
    TradingControl,
    VenueInventory,
)
from execution.risk.positions import latest_mark
from execution.marketdata.services import instrument_save
from execution.risk.services import risk_incident_resolve


@admin.register(Instrument)
class InstrumentAdmin(ModelAdmin):
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


class MarketTableAdmin(ObservatoryAdmin):
    """A platform market-data table keyed by instrument (bars, quotes, funding): millions of rows, so no full count,
    a bounded paginator and the instrument as a raw id."""

    list_select_related = ("instrument",)
    search_fields = ("instrument__symbol",)
    raw_id_fields = ("instrument",)
    show_full_result_count = False
    paginator = BoundedCountPaginator


@admin.register(Bar)
class BarAdmin(MarketTableAdmin):
    list_display = ("ts", "instrument", "timeframe", "open", "high", "low", "close", "volume", "source", "ingested_at")
    list_filter = ("timeframe", "source", "instrument")
    ordering = ("-ts",)


@admin.register(SpotQuote)
class SpotQuoteAdmin(MarketTableAdmin):
    """The quote collector's rows (execution.marketdata.quotes)."""

    list_display = ("received_at", "venue", "instrument", "market", "bid", "ask", "bid_size", "ask_size", "venue_ts")
    list_filter = ("venue", "market_type")
    search_fields = ("instrument__symbol", "market")
    ordering = ("-received_at",)


@admin.register(BasisQuote)
class BasisQuoteAdmin(MarketTableAdmin):
    list_display = ("received_at", "venue", "instrument", "mark", "index", "spot", "basis_bps", "funding_rate")
    list_filter = ("venue",)
    search_fields = ("instrument__symbol", "market")
    ordering = ("-received_at",)


@admin.register(FundingRate)
class FundingRateAdmin(MarketTableAdmin):
    list_display = ("funding_at", "venue", "instrument", "market", "rate", "interval_hours", "received_at")
    list_filter = ("venue",)
    search_fields = ("instrument__symbol", "market")
    ordering = ("-funding_at",)


@admin.register(QuoteMinute)
class QuoteMinuteAdmin(MarketTableAdmin):
    """The 1-minute history backtests read once raw quotes are dropped."""

    list_display = ("minute", "venue", "instrument", "mid_open", "mid_high", "mid_low", "mid_close", "spread_close")
    list_filter = ("venue", "market_type")
    ordering = ("-minute",)


@admin.register(TickBatch)
class TickBatchAdmin(ObservatoryAdmin):
    """What every tick batch did: the first place to look when bots are not trading."""

    list_display = (
        "as_of",
        "instrument_symbol",
        "timeframe",
        good_flag("market_open", description="market", yes="open", no="closed"),
        alarm_text("data_problem", description="data problem"),
        "bots",
        "decisions",
        "no_trades",
        "intents_created",
        "errors",
        "duration_ms",
        "trace_id_link",
    )
    list_filter = ("timeframe", "data_problem", "market_open")
    search_fields = ("instrument_symbol", "trace_id")
    date_hierarchy = "as_of"
    show_full_result_count = False
    paginator = BoundedCountPaginator


class _TenantObservatory(ObservatoryAdmin):
    """Shared columns: the bot as a link (its name comes with ``list_select_related``)."""

    @admin.display(description="bot", ordering="bot_id")
    def bot_link(self, obj):
        return admin_link("admin:bots_bot_change", obj.bot_id, obj.bot.name if obj.bot_id else None)


class IntentLegInline(ReadOnlyInline):
    model = IntentLeg
    fields = ("leg_index", "venue", "instrument", "side", "quantity", "order_type", "limit_price", "stop_price")


class OrderInline(ReadOnlyInline):
    model = Order
    fields = (
        "client_order_id",
        "purpose",
        "venue",
        "instrument",
        "side",
        "quantity",
        "status",
        "filled_quantity",
        "average_price",
        "error_code",
    )
    show_change_link = True


@admin.register(TradeIntent)
class TradeIntentAdmin(_TenantObservatory):
    list_display = (
        "id",
        "bot_link",
        "status",
        "source",
        "bar_ts",
        "idempotency_key",
        "created_by",
        "created_at",
        "trace_id_link",
    )
    list_filter = ("status", "source", "failure_policy")
    list_select_related = ("bot",)
    search_fields = ("idempotency_key", "trace_id", "bot__name", "=id")
    inlines = (IntentLegInline, OrderInline)
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator


class BookFilter(admin.SimpleListFilter):
    """Orders and fills store their venue, not their book: the book follows from it (controlplane.books)."""

    title = "book"
    parameter_name = "book"

    def lookups(self, request, model_admin):
        return Book.choices

    def queryset(self, request, queryset):
        return queryset.filter(venue_in_book(self.value())) if self.value() in Book.values else queryset


@admin.display(description="book")
def venue_book(obj):
    return book_for_venue(obj.venue).label


@admin.register(Order)
class OrderAdmin(_TenantObservatory):
    """Orders are written by the OMS only (a database trigger refuses anything else): nothing here edits them."""

    list_display = (
        "id",
        "client_order_id",
        "bot_link",
        "intent_link",
        "venue",
        venue_book,
        "instrument",
        "side",
        "quantity",
        "order_type",
        "status",
        "filled_quantity",
        "average_price",
        "error_code",
        "created_at",
    )
    list_filter = ("status", BookFilter, "venue", "purpose", "order_type", "side", "bot_stage")
    list_select_related = ("bot", "instrument")
    search_fields = ("client_order_id", "venue_order_id", "trace_id", "bot__name", "instrument__symbol")
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator

    @admin.display(description="intent", ordering="intent_id")
    def intent_link(self, obj):
        return admin_link("admin:execution_tradeintent_change", obj.intent_id)


@admin.register(Fill)
class FillAdmin(_TenantObservatory):
    """Fills are written by the OMS only (a database trigger refuses anything else): nothing here edits them."""

    list_display = (
        "id",
        "ts",
        "bot_link",
        "order_link",
        "venue",
        venue_book,
        "instrument",
        "side",
        "quantity",
        "price",
        "fee",
        "slippage",
        "realized_pnl",
        "bot_stage",
    )
    list_filter = (BookFilter, "venue", "side", "bot_stage")
    list_select_related = ("bot", "instrument")
    search_fields = ("venue_fill_id", "trace_id", "bot__name", "instrument__symbol", "order__client_order_id")
    date_hierarchy = "ts"
    show_full_result_count = False
    paginator = BoundedCountPaginator

    @admin.display(description="order", ordering="order_id")
    def order_link(self, obj):
        return admin_link("admin:execution_order_change", obj.order_id)


@admin.register(StrategyPosition)
class StrategyPositionAdmin(_TenantObservatory):
    """One row per bot, instrument and book: paper (sim venue) and live (the bot's venue) never add up."""

    list_display = (
        "bot_link",
        "instrument",
        "book",
        "quantity",
        "average_price",
        "mark",
        "realized_pnl",
        "fees",
        "updated_at",
    )
    list_filter = ("book", "instrument")
    list_select_related = ("bot", "instrument")
    search_fields = ("bot__name", "instrument__symbol")

    @display(description="mark", label={"stale": "warning", "unknown": "warning"})
    def mark(self, obj):
        """The latest complete bar's close, its bar time, and STALE past its timeframe's freshness limit."""
        if obj.quantity == 0:
            return "-"
        mark = latest_mark(obj.instrument)
        if mark is None:
            return ("unknown", "no bar: unmarked")
        text = f"{mark.price} ({mark.timeframe} bar {mark.bar_ts:%Y-%m-%d %H:%M} UTC)"
        return ("stale", f"STALE {text}") if mark.stale else text


@admin.register(VenueInventory)
class VenueInventoryAdmin(ObservatoryAdmin):
    list_display = ("venue", "book", "asset", "quantity", "updated_at")
    list_filter = ("book", "venue")
    search_fields = ("asset",)


class ControlScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("tenant", "Tenant"), ("bot", "Bot")]

    def queryset(self, request, queryset):
        if self.value() == "tenant":
            return queryset.filter(bot__isnull=True)
        if self.value() == "bot":
            return queryset.filter(bot__isnull=False)
        return queryset


@admin.register(TradingControl)
class TradingControlAdmin(_TenantObservatory):
    """Trading states are set through the API (``/api/bots/{id}/trading-state``, ``/api/tenant/trading-state``)."""

    list_display = ("scope", "bot_link", "state", "set_by", "reason", "updated_at")
    list_filter = ("state", ControlScopeFilter)
    list_select_related = ("bot",)
    search_fields = ("bot__name", "set_by", "reason")

    @admin.display(description="scope")
    def scope(self, obj):
        return "bot" if obj.bot_id else "tenant"


@admin.register(RiskIncident)
class RiskIncidentAdmin(_TenantObservatory):
    list_display = (
        "id",
        "opened_at",
        "kind",
        "status",
        "bot_link",
        "intent_link",
        "resolved_by",
        "resolved_at",
        "trace_id_link",
    )
    list_filter = ("status", "kind")
    list_select_related = ("bot",)
    search_fields = ("kind", "trace_id", "bot__name", "resolution_note")
    date_hierarchy = "opened_at"
    actions = ["resolve"]

    @admin.display(description="intent", ordering="intent_id")
    def intent_link(self, obj):
        return admin_link("admin:execution_tradeintent_change", obj.intent_id)

    @admin.action(description="Resolve (reviewed in admin)", permissions=["operate"])
    def resolve(self, request, queryset):
        for incident in queryset:
            try:
                risk_incident_resolve(
                    incident_id=incident.id,
                    actor=request.user,
                    note=f"resolved in admin by {request.user.get_username()}",
                )
            except ControlPlaneError as exc:
                self.message_user(
                    request,
                    f"{incident}: resolve refused: {exc.code}: {exc.message} (trace {current_trace_id()})",
                    level=messages.ERROR,
                )
            else:
                self.message_user(request, f"{incident}: resolved.", level=messages.SUCCESS)


@admin.register(EquityWatermark)
class EquityWatermarkAdmin(_TenantObservatory):
    """What the drawdown circuit breaker last measured for each bot with a ``max_drawdown``, per book (a stale mark
    is never measured: the row keeps its last fresh measure and its ``marked_at``)."""

    list_display = ("bot_link", "book", "equity", "peak_equity", "drawdown", "peak_at", "marked_at", "tripped_at")
    list_filter = ("book",)
    list_select_related = ("bot",)
    search_fields = ("bot__name",)

    @admin.display(description="drawdown")
    def drawdown(self, obj):
        return obj.drawdown


from execution import arb_admin  # noqa: E402, F401  (arb_spreads and arb_pnl pages)
from execution.arbitrage import funding_admin  # noqa: E402, F401 (registers the funding position pages)
