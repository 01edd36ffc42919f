"""Admin: the Keys Needed page (owners enter and clear keys there), observatories of verifications (with what each
venue said its key may do), owners' key-permission confirmations and usage; owners confirm an unknown key there."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from controlplane.admin import BoundedCountPaginator, ObservatoryAdmin
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Membership
from controlplane.selectors import console_allows
from controlplane.stepup import require_step_up
from integrations import checklist, services
from integrations import permissions as key_permissions
from integrations.models import (
    IntegrationCredential,
    IntegrationUsageEvent,
    IntegrationVerification,
    KeyPermissionConfirmation,
)
from integrations.registry import all_providers, get_provider


def apply_key_form(request, provider: str) -> bool:
    """An owner's key form, on Keys Needed and on a Connections card: ``clear=<NAME>`` clears that key, otherwise
    the non-empty fields are set (an empty one keeps its value), all of them or none. The outcome is a message that
    names the refused fields; True when something changed."""
    spec = get_provider(provider)
    label = spec.label if spec else provider
    try:
        if key_permissions.key_change_needs_step_up(provider):
            require_step_up(request, action=f"Changing {label}'s keys", code=request.POST.get("otp_token", ""))
        if request.POST.get("clear"):
            services.credential_clear(provider=provider, name=request.POST["clear"], actor=request.user)
            messages.success(request, f"Cleared {request.POST['clear']} of {label}.")
        else:
            values = {f.name: request.POST.get(f.name, "") for f in (spec.fields if spec else ())}
            values = {name: value for name, value in values.items() if value.strip()}
            services.credentials_set(provider=provider, values=values, actor=request.user)
            messages.success(request, f"Saved {', '.join(values)} for {label}. Verify it to connect.")
    except ControlPlaneError as exc:
        fields = "; ".join(
            f"{name}: {' '.join(errors)}" for name, errors in (exc.details or {}).items() if isinstance(errors, list)
        )
        fix = f" Fix: {exc.suggested_fix}" if exc.code == ErrorCode.STEP_UP_REQUIRED else ""
        messages.error(request, f"{label}: nothing was saved. {exc.message} {fields}{fix}".strip())
        return False
    return True


class ProviderFilter(admin.SimpleListFilter):
    """Providers from the registry, not the values present: listing those is a SELECT DISTINCT over every usage
    event of the tenant on each page view (14 ms at 100,000 events, bench/observatory_pages.py), growing with it."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return [(p.provider, p.label) for p in all_providers()]

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(ObservatoryAdmin):
    """Which keys are set, by whom and when; never the value. Keys are entered on the Keys Needed page."""

    list_display = ("provider", "name", "hint", "set_by", "set_at")
    list_filter = (ProviderFilter,)
    list_select_related = ("set_by",)
    fields = ("provider", "name", "hint", "set_by", "set_at")
    readonly_fields = fields

    @admin.display(description="ends in")
    def hint(self, obj):
        return f"…{obj.last4}" if obj.last4 else "(hidden)"

    def get_urls(self):
        return [
            path("keys-needed/", self.admin_site.admin_view(self.keys_needed_view), name="integrations_keys_needed")
        ] + super().get_urls()

    def keys_needed_view(self, request):
        owner = console_allows(request, Membership.Role.OWNER)
        if request.method == "POST":
            if not owner:
                raise PermissionDenied("Only an owner of the tenant may set or clear keys.")
            self._apply(request)
            return redirect(reverse("admin:integrations_keys_needed"))
        keys = checklist.keys_needed() if request.tenant else None
        rows = {r["provider"]: r for r in checklist.provider_status_rows()} if request.tenant else {}
        for group in (keys or {}).get("groups", []):
            for key in group["keys"]:
                key["connection"] = rows[key["provider"]]
        context = {
            **self.admin_site.each_context(request),
            "title": "Keys Needed",
            "checklist": keys,
            # A set key is not a working one: the checklist names every configured provider that is failing.
            "failing": [r for r in rows.values() if r["configured"] and not r["connected"]],
            "is_owner": owner,
            # Their forms ask for an authenticator code (controlplane.stepup).
            "step_up_providers": {p.provider for p in all_providers() if key_permissions.applies_to(p)},
        }
        return TemplateResponse(request, "admin/integrations/keys_needed.html", context)

    def _apply(self, request) -> None:
        provider = request.POST.get("provider", "")
        if "verify" not in request.POST:
            apply_key_form(request, provider)
            return
        try:
            result = services.verify_provider(provider=provider, actor=request.user)
        except ControlPlaneError as exc:
            messages.error(request, f"{exc.message} {exc.details or ''}")
            return
        level = messages.SUCCESS if result.status == "ok" else messages.ERROR
        messages.add_message(
            request,
            level,
            f"Verify {provider}: {result.status} {result.error_code} {result.message} (trace {result.trace_id})",
        )


@admin.register(IntegrationVerification)
class IntegrationVerificationAdmin(ObservatoryAdmin):
    list_display = (
        "verified_at",
        "provider",
        "status",
        "error_code",
        "key_permissions",
        "latency_ms",
        "source",
        "trace_id_link",
    )
    list_filter = ("status", ProviderFilter)
    search_fields = ("trace_id", "provider")
    exclude = ("key_fingerprint",)  # a digest of the key: of no use to read, and never shown
    readonly_fields = (
        "provider",
        "status",
        "error_code",
        "message",
        "permissions",
        "latency_ms",
        "source",
        "verified_at",
    )
    actions = ["confirm_key_permissions"]

    @admin.display(description="key permissions")
    def key_permissions(self, obj):
        permissions = obj.permissions
        if permissions is None:
            return "—"
        if not isinstance(permissions, dict):
            return str(permissions)
        return ", ".join(
            f"{name.removeprefix('can_')}: {'yes' if permissions.get(name) else 'no'}"
            for name in ("can_trade", "can_withdraw", "can_transfer")
            if isinstance(permissions.get(name), bool)
        )

    def has_owner_permission(self, request):
        return console_allows(request, Membership.Role.OWNER)

    @admin.action(description="Confirm the key is trade-only (owner; the venue cannot tell)", permissions=["owner"])
    def confirm_key_permissions(self, request, queryset):
        for verification in queryset:
            latest = key_permissions.latest_verification(verification.provider)
            if latest is None or latest.pk != verification.pk:
                messages.error(
                    request,
                    f"{verification.provider}: only the latest verification's key can be confirmed; select that one.",
                )
                continue
            try:
                services.key_permissions_confirm(provider=verification.provider, actor=request.user)
            except ControlPlaneError as exc:
                messages.error(request, f"{verification.provider}: {exc.message}")
                continue
            messages.success(request, f"{verification.provider}: key confirmed trade-only; LIVE may use it.")


@admin.register(KeyPermissionConfirmation)
class KeyPermissionConfirmationAdmin(ObservatoryAdmin):
    """Who confirmed which venue key as trade-only, and when (the audit log has the same, with its trace)."""

    list_display = ("confirmed_at", "provider", "verification", "confirmed_by", "trace_id_link")
    list_filter = (ProviderFilter,)
    list_select_related = ("confirmed_by", "verification")
    raw_id_fields = ("verification",)
    exclude = ("key_fingerprint",)
    readonly_fields = ("provider", "verification", "permissions", "confirmed_by", "confirmed_at")


@admin.register(IntegrationUsageEvent)
class IntegrationUsageEventAdmin(ObservatoryAdmin):
    list_display = (
        "created_at",
        "provider",
        "operation",
        "status",
        "error_code",
        "latency_ms",
        "bot_id",
        "trace_id_link",
    )
    list_filter = ("status", ProviderFilter)
    search_fields = ("trace_id", "operation")
    show_full_result_count = False
    paginator = BoundedCountPaginator
