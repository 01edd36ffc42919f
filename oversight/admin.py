"""The supervisor's records (read-only), and the judging actions of the bot's admin: promote (through the gates), reconcile and resolve a mismatch. Mixed
into the bot's admin at the top, where the bot page is registered (observatory.admin); they call the same services
as the API and report each refusal with its code, fix and trace id (bots.admin._apply)."""

from __future__ import annotations

from django.contrib import admin

from bots.admin import _apply
from bots.models import Reconciliation
from controlplane.admin import ObservatoryAdmin
from oversight.models import SupervisorBreach, SupervisorPolicy, SupervisorRun
from oversight.promotion import bot_promote_by_request
from oversight.reconcile import bot_reconcile, bot_reconcile_resolve


class BotJudgingActions:
    @admin.action(description="Promote to the next stage (checks its gates)", permissions=["operate"])
    def promote(self, request, queryset):
        # To LIVE it needs this session's recent step-up (the bot page's Promote asks for the code).
        _apply(self, request, queryset, "promote", lambda bot: bot_promote_by_request(request, bot_id=bot.id))

    @admin.action(description="Reconcile with the venue", permissions=["operate"])
    def reconcile(self, request, queryset):
        _apply(self, request, queryset, "reconcile", lambda bot: bot_reconcile(bot_id=bot.id, actor=request.user))

    @admin.action(description="Resolve a reconcile mismatch: accept the venue's positions", permissions=["operate"])
    def resolve_accept_venue(self, request, queryset):
        _apply(
            self,
            request,
            queryset,
            "accept the venue's positions",
            lambda bot: bot_reconcile_resolve(
                bot_id=bot.id,
                action=Reconciliation.Resolution.ACCEPT_VENUE,
                actor=request.user,
                reason=f"venue's positions accepted in admin by {request.user.get_username()}",
            ),
        )

    @admin.action(
        description="Resolve a reconcile mismatch: flatten at the venue (market orders)", permissions=["operate"]
    )
    def resolve_flatten(self, request, queryset):
        _apply(
            self,
            request,
            queryset,
            "flatten at the venue",
            lambda bot: bot_reconcile_resolve(
                bot_id=bot.id,
                action=Reconciliation.Resolution.FLATTEN,
                actor=request.user,
                reason=f"flattened at the venue from admin by {request.user.get_username()}",
            ),
        )


@admin.register(SupervisorRun)
class SupervisorRunAdmin(ObservatoryAdmin):
    """The supervisor's heartbeat: one row per run (platform-wide), with what it could not measure."""

    list_display = (
        "fence",
        "started_at",
        "finished_at",
        "hostname",
        "pid",
        "tenants",
        "bots",
        "actions",
        "breaches_open",
    )
    ordering = ("-fence",)


@admin.register(SupervisorBreach)
class SupervisorBreachAdmin(ObservatoryAdmin):
    """Breach episodes of this tenant; going back down the ladder happens on the bot and its trading state."""

    list_display = ("id", "trigger", "bot", "step", "value", "threshold", "first_seen", "last_seen", "cleared_at")
    list_filter = ("trigger", "step")
    list_select_related = ("bot",)
    raw_id_fields = ("bot",)


@admin.register(SupervisorPolicy)
class SupervisorPolicyAdmin(ObservatoryAdmin):
    """This tenant's threshold overrides (changed by owners through PUT /api/tenant/supervisor-thresholds)."""

    list_display = ("tenant", "overrides", "updated_by", "updated_at")
