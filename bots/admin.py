"""The lifecycle in the operator's console: bots, runners and jobs with filters, and actions that call the same
services as the API (and show the same error codes, fixes and trace ids)."""

from __future__ import annotations

from django.contrib import admin, messages

from bots import services
from bots.models import Bot, CancelRequest, Job, Reconciliation, Runner, TenantKillSwitch
from controlplane.admin import ObservatoryAdmin, alarm_flag, good_flag
from controlplane.errors import ControlPlaneError
from controlplane.trace import current_trace_id


def _apply(modeladmin, request, queryset, label: str, call) -> None:
    """Run ``call(obj)`` for each selected row; report each success and each refusal with its code and fix."""
    for obj in queryset:
        try:
            call(obj)
        except ControlPlaneError as exc:
            modeladmin.message_user(
                request,
                f"{obj}: {label} refused: {exc.code}: {exc.message} Fix: {exc.suggested_fix} "
                f"(trace {current_trace_id()})",
                level=messages.ERROR,
            )
        else:
            modeladmin.message_user(request, f"{obj}: {label} done.", level=messages.SUCCESS)


class KillOrMismatchFilter(admin.SimpleListFilter):
    """Bots blocked by their own kill switch or an unresolved reconcile mismatch (the stage has its own filter, and
    the trading state ACTIVE / REDUCE_ONLY / HALTED is the execution app's)."""

    title = "killed or reconcile mismatch"
    parameter_name = "trading"

    def lookups(self, request, model_admin):
        return [("killed", "Killed"), ("mismatch", "Reconcile mismatch"), ("ok", "Clear")]

    def queryset(self, request, queryset):
        if self.value() == "killed":
            return queryset.filter(killed=True)
        if self.value() == "mismatch":
            return queryset.filter(reconcile_mismatch=True)
        if self.value() == "ok":
            return queryset.filter(killed=False, reconcile_mismatch=False)
        return queryset


@admin.register(Bot)
class BotAdmin(ObservatoryAdmin):
    list_display = (
        "name",
        "strategy",
        "stage",
        "venue",
        "data_source",
        alarm_flag("killed", description="killed", label="KILLED"),
        alarm_flag("reconcile_mismatch", description="reconcile", label="MISMATCH"),
        "autonomy_tier",
        "updated_at",
    )
    list_filter = ("stage", KillOrMismatchFilter, "strategy", "venue", "autonomy_tier")
    search_fields = ("name", "strategy")
    # Promote and reconcile judge the bot: their actions are the top layer's (oversight.admin.BotJudgingActions).
    actions = ["demote", "kill", "start_runner"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "live_exit"]

    @admin.display(description="last exit from LIVE")
    def live_exit(self, bot: Bot) -> str:
        """What the LIVE gate says about how the bot last left LIVE: the console must say when a venue still holds
        what a bot left behind (the incident is in Risk incidents). Read once per page: the form renders a
        read-only field more than once."""
        if not hasattr(bot, "_live_exit_text"):
            bot._live_exit_text = self._live_exit(bot)
        return bot._live_exit_text

    def _live_exit(self, bot: Bot) -> str:
        from bots.selectors import unresolved_live_exit

        found = unresolved_live_exit(bot)
        if found is None:
            left = Reconciliation.objects.filter(bot=bot, purpose=Reconciliation.Purpose.LIVE_EXIT).order_by("-id")
            last = left.first()
            return (
                "never left LIVE"
                if last is None
                else (
                    f"report {last.id}: {last.status}"
                    + (f", resolved by {last.resolution}" if last.resolution else ", nothing left at the venue")
                )
            )
        what, record = found
        if what == "pending":
            return f"PENDING: cancel request {record.id} not processed yet; what the venue holds is unknown"
        held = ", ".join(f"{s} {d['venue']:g}" for s, d in sorted(record.differences.items())) or "unknown holdings"
        return (
            f"UNMANAGED_LIVE_POSITION: {record.venue} still holds {held} (report {record.id}); resolve it "
            "with flatten or accept venue"
        )

    @admin.action(description="Demote one stage", permissions=["operate"])
    def demote(self, request, queryset):
        _apply(
            self,
            request,
            queryset,
            "demote",
            lambda bot: services.bot_demote(bot_id=bot.id, actor=request.user, reason="demoted from admin"),
        )

    @admin.action(description="Kill (latched; cancels open orders)", permissions=["operate"])
    def kill(self, request, queryset):
        _apply(
            self,
            request,
            queryset,
            "kill",
            lambda bot: services.bot_kill(
                bot_id=bot.id, actor=request.user, reason=f"killed from admin by {request.user.get_username()}"
            ),
        )

    @admin.action(description="Start a runner (safe-start checks)", permissions=["operate"])
    def start_runner(self, request, queryset):
        _apply(self, request, queryset, "start", lambda bot: services.runner_start(bot_id=bot.id, actor=request.user))


@admin.register(Runner)
class RunnerAdmin(ObservatoryAdmin):
    list_display = (
        "id",
        "bot",
        "status",
        "started_by",
        "started_at",
        "last_heartbeat_at",
        "last_tick_at",
        "restart_count",
        "stop_reason",
    )
    list_filter = ("status",)
    list_select_related = ("bot",)
    raw_id_fields = ("bot",)
    actions = ["stop", "restart"]

    @admin.action(description="Stop", permissions=["operate"])
    def stop(self, request, queryset):
        _apply(
            self,
            request,
            queryset,
            "stop",
            lambda runner: services.runner_stop(runner_id=runner.id, actor=request.user, reason="stopped from admin"),
        )

    @admin.action(description="Restart (safe-start checks)", permissions=["operate"])
    def restart(self, request, queryset):
        _apply(
            self,
            request,
            queryset,
            "restart",
            lambda runner: services.runner_restart(runner_id=runner.id, actor=request.user),
        )


@admin.register(Job)
class JobAdmin(ObservatoryAdmin):
    list_display = ("id", "kind", "status", "bot", "attempts", "error_code", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "status", "error_code")
    list_select_related = ("bot",)
    search_fields = ("trace_id", "celery_task_id")
    actions = ["cancel", "retry"]

    @admin.action(description="Cancel", permissions=["operate"])
    def cancel(self, request, queryset):
        _apply(self, request, queryset, "cancel", lambda job: services.job_cancel(job_id=job.id, actor=request.user))

    @admin.action(description="Retry", permissions=["operate"])
    def retry(self, request, queryset):
        _apply(self, request, queryset, "retry", lambda job: services.job_retry(job_id=job.id, actor=request.user))


@admin.register(Reconciliation)
class ReconciliationAdmin(ObservatoryAdmin):
    list_display = (
        "id",
        "bot",
        "status",
        "purpose",
        good_flag("is_flat", description="flat", yes="flat", no="not flat"),
        "venue",
        "book",
        "requested_by",
        "created_at",
        "resolution",
        "resolved_by",
        "resolved_at",
    )
    list_filter = ("status", "purpose", "book", "is_flat", "resolution")
    list_select_related = ("bot",)
    readonly_fields = ("resolution", "resolution_reason", "resolved_by", "resolved_at", "resolution_detail")


@admin.register(CancelRequest)
class CancelRequestAdmin(ObservatoryAdmin):
    list_display = ("id", "scope", "purpose", "bot", "status", "requested_by", "reason", "created_at", "processed_at")
    list_filter = ("scope", "purpose", "status")
    list_select_related = ("bot",)


@admin.register(TenantKillSwitch)
class TenantKillSwitchAdmin(ObservatoryAdmin):
    list_display = (
        "tenant",
        alarm_flag("killed", description="killed", label="KILLED"),
        "changed_by",
        "changed_at",
        "reason",
    )
