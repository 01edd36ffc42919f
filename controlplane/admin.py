"""The operator's console for tenancy: tenants, memberships and the audit log (read-only), scoped by RLS."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, User
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from controlplane.models import AuditEvent, Membership, ProcessHeartbeat, Tenant
from controlplane.selectors import console_allows, console_role, switchable_tenants_for

admin.site.site_header = "Trading control plane"
admin.site.site_title = "Control plane"
admin.site.index_title = "Observatory"


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
        that hid them would hide when things happened."""
        return self.readonly_fields or [field.name for field in self.model._meta.fields]


class FixedCountPaginator(Paginator):
    """Counting an append-only table of millions of rows on every page view is not worth it."""

    @cached_property
    def count(self):
        return 10_000


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
    list_display = ("created_at", "actor", "action", "resource_type", "resource_id", "tenant", "trace_id")
    list_filter = ("action", "resource_type")
    list_select_related = ("tenant",)
    search_fields = ("trace_id", "resource_id", "actor", "action")
    show_full_result_count = False
    paginator = FixedCountPaginator
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # Platform-wide events (no tenant) are shown beside the active tenant's, as their RLS policy allows.
        return AuditEvent.unscoped.select_related("tenant")


@admin.register(ProcessHeartbeat)
class ProcessHeartbeatAdmin(ObservatoryAdmin):
    list_display = ("kind", "hostname", "pid", "queues", "started_at", "last_seen_at")
    list_filter = ("kind",)


# Users and groups in the console's theme (unfold's forms), with Django's own behaviour.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(DjangoUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin, ModelAdmin):
    pass
