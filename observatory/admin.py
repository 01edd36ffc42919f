"""The bot's admin change page is the bot page (observatory.bot_page). It reads backtests (the autonomy score),
which ``bots`` may not import, so the page is registered here, in the top layer, over bots' own BotAdmin: the
list and its filters stay bots' own; the actions are bots' own plus the judging ones (oversight.admin)."""

from django.contrib import admin

from bots.admin import BotAdmin
from oversight.admin import BotJudgingActions
from bots.models import Bot
from observatory import alerts_admin  # noqa: F401 (registers the alerts pages)
from observatory.bot_actions import offered_actions
from observatory.bot_page import bot_page_data
from observatory.roles import can_manage_keys, can_operate

admin.site.unregister(Bot)


@admin.register(Bot)
class BotPageAdmin(BotJudgingActions, BotAdmin):
    change_form_template = "observatory/bot_page.html"
    actions = ["promote", "demote", "kill", "start_runner", "reconcile", "resolve_accept_venue", "resolve_flatten"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        bot = self.get_object(request, object_id)
        if bot is not None:
            extra_context = {
                **(extra_context or {}),
                "page": bot_page_data(request, bot),
                "can_operate": can_operate(request),
                "is_owner": can_manage_keys(request),
                "bot_actions": offered_actions(bot),
            }
        return super().change_view(request, object_id, form_url, extra_context)
