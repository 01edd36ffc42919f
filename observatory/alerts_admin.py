"""The console's alerts: recipients (owners add, change and remove them, through the same services as the API) and
the alert history, read-only, built so an operator woken at 3 a.m. sees first which alerts reached nobody.

Registered here rather than in controlplane/admin.py: that module is the base every app's admin imports, and this
page is one of the observatory's."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from unfold.decorators import display

from controlplane import alerting
from controlplane.admin import BoundedCountPaginator, ObservatoryAdmin, ReadOnlyInline
from controlplane.errors import ControlPlaneError
from controlplane.stepup import require_step_up
from controlplane.models import Alert, AlertDelivery, AlertRecipient, Membership
from controlplane.selectors import ALERT_REACH, alerts_with_reach, console_allows

_SEVERITY_COLOURS = {"critical": "danger", "warning": "warning", "info": "info"}
_REACH_COLOURS = {"nobody": "danger", "partly": "warning", "pending": "warning", "reached": "success"}
_STATUS_COLOURS = {AlertDelivery.Status.FAILED: "danger", AlertDelivery.Status.PENDING: "warning"}
_STATUS_COLOURS[AlertDelivery.Status.SENT] = "success"


class AlertRecipientForm(forms.ModelForm):
    otp_token = forms.CharField(
        label="Authenticator code",
        required=False,
        help_text="Changing who is alerted needs a second factor: 6 digits from your app, or a backup code "
        "(not asked again for a few minutes after one was accepted).",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )
    request = None  # bound by AlertRecipientAdmin.get_form: the step-up belongs to this console session

    class Meta:
        model = AlertRecipient
        fields = ["name", "channel", "address", "min_severity", "active"]

    def clean(self):
        """The service's own address check, so a bad number is a field error on the form, not a failed save; and
        the step-up, so a missing or wrong code is a field error and nothing is saved."""
        data = super().clean()
        try:
            require_step_up(self.request, action="Changing the alert recipients", code=data.get("otp_token", ""))
        except ControlPlaneError as exc:
            self.add_error("otp_token", exc.message)
            return data
        if data.get("channel") and data.get("address"):
            try:
                data["address"] = alerting.validated_address(data["channel"], data["address"])
            except ControlPlaneError as exc:
                for field, errors in (exc.details or {}).items():
                    self.add_error(field if field in self.fields else None, errors)
                return data
            taken = AlertRecipient.objects.filter(channel=data["channel"], address=data["address"])
            if taken.exclude(pk=self.instance.pk).exists():  # the database's constraint still decides a race
                self.add_error("address", "This tenant already has a recipient at this address on this channel.")
        return data


@admin.register(AlertRecipient)
class AlertRecipientAdmin(ObservatoryAdmin):
    """Every member sees who is told; owners add and change recipients (each an audited service call, after a
    second factor), and remove them through the API."""

    form = AlertRecipientForm
    list_display = ("name", "channel", "address", "min_severity", "active_label", "created_by", "updated_at")
    list_filter = ("channel", "min_severity", "active")
    list_select_related = ("created_by",)
    search_fields = ("name", "address")
    fields = (*alerting.RECIPIENT_FIELDS, "created_by", "created_at", "updated_at")
    actions = ["send_test"]

    @display(description="active", ordering="active", label={"yes": "success", "no": "danger"})
    def active_label(self, obj):
        return "yes" if obj.active else "no"

    def _owner(self, request) -> bool:
        return console_allows(request, Membership.Role.OWNER)

    def has_owner_permission(self, request):
        return self._owner(request)

    def has_add_permission(self, request):
        return self._owner(request)

    def has_change_permission(self, request, obj=None):
        return self._owner(request)

    def has_delete_permission(self, request, obj=None):
        """Removal needs a second factor, which Django's delete confirmation cannot ask for: in the console an owner
        unticks "active" (the change form asks for the code); DELETE /api/tenant/alert-recipients/{id} removes."""
        return False

    def get_readonly_fields(self, request, obj=None):
        return ("created_by", "created_at", "updated_at") if self._owner(request) else self.fields

    def get_exclude(self, request, obj=None):
        return None

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [*fields, "otp_token"] if self._owner(request) else fields

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in alerting.RECIPIENT_FIELDS}
        try:
            if change:
                saved = alerting.recipient_update(recipient_id=obj.pk, changes=values, actor=request.user)
            else:
                saved = alerting.recipient_create(**values, actor=request.user)
        except ControlPlaneError as exc:  # a race the form could not see (the same address saved meanwhile)
            messages.error(request, f"Nothing was saved: {exc.message} {exc.details or ''}")
            return
        obj.pk = saved.pk

    @admin.action(description="Send a test alert (owner)", permissions=["owner"])
    def send_test(self, request, queryset):
        for recipient in queryset:
            delivery = alerting.recipient_test(recipient_id=recipient.id, actor=request.user)
            level = messages.SUCCESS if delivery.status == AlertDelivery.Status.SENT else messages.ERROR
            detail = f": {delivery.last_error}" if delivery.last_error else ""
            messages.add_message(request, level, f"Test to {recipient}: {delivery.status}{detail}")


class ReachFilter(admin.SimpleListFilter):
    title = "reached"
    parameter_name = "reached"

    def lookups(self, request, model_admin):
        return [
            ("nobody", "nobody (all failed, or no recipient)"),
            ("pending", "nobody yet (still trying)"),
            ("partly", "some recipients, others failed"),
            ("reached", "every recipient"),
        ]

    def queryset(self, request, queryset):
        return queryset.filter(reached=self.value()) if self.value() in ALERT_REACH else queryset


class DeliveryStatusFilter(admin.SimpleListFilter):
    title = "a delivery's status"
    parameter_name = "delivery_status"

    def lookups(self, request, model_admin):
        return AlertDelivery.Status.choices

    def queryset(self, request, queryset):
        if self.value() in AlertDelivery.Status.values:
            return queryset.filter(deliveries__status=self.value()).distinct()
        return queryset


class AlertDeliveryInline(ReadOnlyInline):
    model = AlertDelivery
    fields = (
        "channel",
        "address",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "provider_message_id",
        "sent_at",
    )


@admin.register(Alert)
class AlertAdmin(ObservatoryAdmin):
    """The alert history: what, when, how loud, how many repeats were held back, and whether anyone was told."""

    list_display = (
        "created_at",
        "severity_label",
        "reach",
        "event",
        "message",
        "bot_id",
        "suppressed_count",
        "trace_id_link",
    )
    list_filter = ("severity", ReachFilter, DeliveryStatusFilter, "event")
    search_fields = ("event", "message", "trace_id", "key")
    inlines = [AlertDeliveryInline]
    show_full_result_count = False
    paginator = BoundedCountPaginator
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return alerts_with_reach(super().get_queryset(request))

    @display(description="severity", ordering="severity", label=_SEVERITY_COLOURS)
    def severity_label(self, obj):
        return obj.severity

    @display(description="reached", label=_REACH_COLOURS)
    def reach(self, obj):
        """Nobody in red when no delivery was sent and none is still trying (all failed, or no recipient heard it);
        orange when some recipients were told and others were not."""
        texts = {
            "partly": f"{obj.sent_count} sent, {obj.failed_count} failed",
            "reached": f"{obj.sent_count} sent",
            "pending": f"{obj.pending_count} pending",
            "nobody": f"NOBODY: {obj.failed_count} failed" if obj.failed_count else "NOBODY: no recipient",
        }
        return (obj.reached, texts[obj.reached])


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ObservatoryAdmin):
    """Each alert's way to each recipient; FAILED ones are the alerts nobody received."""

    list_display = (
        "created_at",
        "alert",
        "channel",
        "address",
        "status_label",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
    )
    list_filter = ("status", "channel")
    list_select_related = ("alert",)
    search_fields = ("address", "last_error", "provider_message_id")
    raw_id_fields = ("alert", "recipient")
    show_full_result_count = False
    paginator = BoundedCountPaginator

    @display(description="status", ordering="status", label=_STATUS_COLOURS)
    def status_label(self, obj):
        return obj.status
