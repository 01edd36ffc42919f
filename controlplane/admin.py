"""The operator's console for tenancy: tenants, memberships and the audit log (read-only), scoped by RLS; and what
every observatory page shares: the read-only base, counts that never invent a number, trace ids as links to the
trace explorer, and flag columns that are drawn as alarms only when they are one."""

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, User
from django.core.paginator import Paginator
from django.db.models import BooleanField, QuerySet
from django.utils.functional import cached_property
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from controlplane.links import trace_link
from controlplane.models import ApiToken, AuditEvent, Membership, OutboxMessage, ProcessHeartbeat, Tenant
from controlplane.selectors import console_allows, console_role, switchable_tenants_for

admin.site.site_header = "Trading control plane"
admin.site.site_title = "Control plane"
admin.site.index_title = "Observatory"


# Label kinds of the flag columns below, and the unfold colour each is drawn in.
_FLAG_COLOURS = {"alarm": "danger", "good": "success", "unknown": "warning"}
_QUIET_NO = "no"


def alarm_flag(field: str, *, description: str, label: str):
    """A column for a flag that is an alarm when set (``killed``, ``reconcile_mismatch``): a red ``label`` when
    true, a quiet "no" when false. Django draws a False boolean as a red cross, which reads as the very alarm it
    is the absence of."""

    @display(description=description, ordering=field, label=_FLAG_COLOURS)
    def column(obj):
        return ("alarm", label) if getattr(obj, field) else _QUIET_NO

    column.__name__ = field
    return column


def alarm_text(field: str, *, description: str):
    """A column for a text field that names a problem when set (``data_problem``): the problem in red, or a quiet
    "no" when there is none."""

    @display(description=description, ordering=field, label=_FLAG_COLOURS)
    def column(obj):
        value = getattr(obj, field)
        return ("alarm", value) if value else _QUIET_NO

    column.__name__ = field
    return column


def good_flag(field: str, *, description: str, yes: str, no: str):
    """A column for a flag that is good when true (``is_flat``, ``market_open``): green ``yes``, a neutral ``no``,
    and "unknown" in orange when the flag is null: an unknown is not a no."""

    @display(description=description, ordering=field, label=_FLAG_COLOURS)
    def column(obj):
        value = getattr(obj, field)
        if value is None:
            return ("unknown", "unknown")
        return ("good", yes) if value else no

    column.__name__ = field
    return column


def plain_flag(field):
    """A flag on a detail page as the words "yes" or "no" ("unknown" for a null): Django draws a False boolean as
    a red cross, and on a read-only page every flag (``killed = False`` included) would look like an alarm."""

    @display(description=field.verbose_name)
    def value(obj):
        flag = getattr(obj, field.name)
        return "unknown" if flag is None else "yes" if flag else "no"

    value.__name__ = field.name
    return value


class ObservatoryAdmin(ModelAdmin):
    """Read-only by default: state changes go through services (admin actions call them).

    Every member of the page's tenant sees its pages (viewers see); actions marked ``permissions=["operate"]``
    are offered to, and run for, operators and owners only."""

    def has_module_permission(self, request):
        return console_role(request) is not None or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return console_role(request) is not None or super().has_view_permission(request, obj)

    def has_operate_permission(self, request):
        return console_allows(request, Membership.Role.OPERATOR)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        """Every field unless the page names its own, the non-editable ones (timestamps) included: a read-only page
        that hid them would hide when things happened. A ``trace_id`` is shown as its link to the trace
        explorer (``get_exclude`` keeps the plain field off the form)."""
        names = list(self.readonly_fields or [field.name for field in self.model._meta.fields])
        if self._has_trace_id():
            if "trace_id" not in names:
                names.append("trace_id")
            names = ["trace_id_link" if name == "trace_id" else name for name in names]
        flags = {f.name: f for f in self.model._meta.fields if isinstance(f, BooleanField)}
        return [plain_flag(flags[name]) if name in flags else name for name in names]

    def get_exclude(self, request, obj=None):
        """The fields shown through a display of their own (a trace link, a flag in words) stay off the form, or
        the read-only page would show them twice, once as a bare id or a red cross."""
        shown_otherwise = [f.name for f in self.model._meta.fields if isinstance(f, BooleanField)]
        if self._has_trace_id():
            shown_otherwise.append("trace_id")
        exclude = list(super().get_exclude(request, obj) or ())
        return [*exclude, *shown_otherwise] if shown_otherwise else (exclude or None)

    def _has_trace_id(self) -> bool:
        return any(field.name == "trace_id" for field in self.model._meta.fields)

    @display(description="trace id", ordering="trace_id")
    def trace_id_link(self, obj):
        return trace_link(obj.trace_id)


class ReadOnlyInline(TabularInline):
    """Rows of a parent shown on its page and never edited there: what the observatory's inlines are (orders of
    an intent, chunks of a matrix); changes go through the services."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        """Whoever sees the parent's page sees its rows, as on every observatory page (members hold no Django
        model permissions; their role in the tenant decides)."""
        return console_role(request) is not None or super().has_view_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CountAtLeast(int):
    """A count that stopped at its cap: it compares and pages as the cap plus one, and prints as "more than <cap>",
    so no template (the page header's "N results" included) can show it as an exact number."""

    def __new__(cls, cap: int):
        instance = super().__new__(cls, cap + 1)
        instance.cap = cap
        return instance

    @property
    def cap_display(self) -> str:
        return f"{self.cap:,}"

    def __str__(self) -> str:
        return f"more than {self.cap_display}"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else super().__format__(spec)


class BoundedCountPaginator(Paginator):
    """Counts the rows for real, but never more than ``count_cap`` + 1 of them
    (``SELECT count(*) FROM (... LIMIT cap + 1)``): an append-only table of millions of rows is not counted on
    every page view, and a list of 2 rows says 2. Above the cap the count is a lower bound (``CountAtLeast``);
    the pages offered are the ones the counted rows fill, so none of them is empty."""

    count_cap = 10_000
    template_name = "admin/bounded_count_pagination.html"

    @cached_property
    def count(self) -> int:
        capped = self.object_list[: self.count_cap + 1]
        rows = capped.count() if isinstance(capped, QuerySet) else len(capped)
        return CountAtLeast(self.count_cap) if rows > self.count_cap else rows

    @property
    def count_is_lower_bound(self) -> bool:
        return isinstance(self.count, CountAtLeast)

    def page(self, number):
        """The last counted page holds a full page of rows when more exist than were counted, not just the one
        row past the cap."""
        if not self.count_is_lower_bound:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)


@admin.register(Tenant)
class TenantAdmin(ModelAdmin):
    list_display = ("slug", "name", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return switchable_tenants_for(request.user)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(ObservatoryAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__email")


@admin.register(AuditEvent)
class AuditEventAdmin(ObservatoryAdmin):
    list_display = ("created_at", "actor", "action", "resource_type", "resource_id", "tenant", "trace_id_link")
    list_filter = ("action", "resource_type")
    list_select_related = ("tenant",)
    search_fields = ("trace_id", "resource_id", "actor", "action")
    show_full_result_count = False
    paginator = BoundedCountPaginator
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # Platform-wide events (no tenant) are shown beside the active tenant's, as their RLS policy allows.
        return AuditEvent.unscoped.select_related("tenant")


@admin.register(ProcessHeartbeat)
class ProcessHeartbeatAdmin(ObservatoryAdmin):
    list_display = ("kind", "hostname", "pid", "queues", "started_at", "last_seen_at")
    list_filter = ("kind",)


# API tokens: only digests are stored, so the console lists them (never a value) and superusers revoke them.
# knox's own admin (for its swapped-out model) and DRF's plaintext TokenProxy admin are taken away.
for _model in (apps.get_model("knox", "AuthToken"), apps.get_model("authtoken", "TokenProxy")):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(ApiToken)
class ApiTokenAdmin(ModelAdmin):
    list_display = ("id", "user", "name", "created", "expiry")
    search_fields = ("user__username", "name")
    fields = ("user", "name", "created", "expiry")
    readonly_fields = fields

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False  # bootstrap_tenant --new-token issues them, showing the value once

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def delete_model(self, request, obj):
        self.delete_queryset(request, ApiToken.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        from controlplane.services import audit_record

        for api_token in queryset.select_related("user"):
            audit_record(
                action="token.revoke",
                resource_type="api_token",
                resource_id=api_token.id,
                actor=request.user,
                before={"user": api_token.user.get_username(), "name": api_token.name},
            )
        queryset.delete()


class OutboxSentFilter(admin.SimpleListFilter):
    title = "sent"
    parameter_name = "sent"

    def lookups(self, request, model_admin):
        return [("no", "unsent (the relay's)"), ("yes", "sent")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(sent_at__isnull=self.value() == "no")
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ObservatoryAdmin):
    list_display = (
        "id",
        "created_at",
        "what",
        "task",
        "queue",
        "sent_at",
        "attempts",
        "next_attempt_at",
        "trace_id_link",
    )
    list_filter = (OutboxSentFilter, "task")
    search_fields = ("what", "trace_id", "last_error")
    show_full_result_count = False
    paginator = BoundedCountPaginator


# Users and groups in the console's theme (unfold's forms), with Django's own behaviour.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(DjangoUserAdmin, ModelAdmin):
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        good_flag("is_staff", description="staff status", yes="staff", no="no"),
    )
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin, ModelAdmin):
    pass
