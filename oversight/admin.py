"""The judging actions of the bot's admin: promote (through the gates), reconcile and resolve a mismatch. Mixed
into the bot's admin at the top, where the bot page is registered (observatory.admin); they call the same services
as the API and report each refusal with its code, fix and trace id (bots.admin._apply)."""

from __future__ import annotations

from django.contrib import admin

from bots.admin import _apply
from bots.models import Reconciliation
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
