"""The console's own pages: the dashboard's live panel, Connections (verify, keys, proof of use) and the trace
explorer. Each state change goes through its app's service, and each checks the console role first, so a forged
POST by a viewer is refused like a click."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from controlplane.models import Membership
from controlplane.status import forget_cached_status
from controlplane.trace import is_well_formed
from integrations import services as integration_services
from integrations.admin import apply_key_form
from integrations.models import IntegrationUsageEvent
from integrations.registry import get_provider
from observatory import connections as connection_data
from observatory.dashboard import dashboard_data
from observatory.roles import can_manage_keys, can_operate, console_role, require_console_role
from observatory.traces import trace_timeline

USAGE_EVENTS_SHOWN = 50


def _page(request, template: str, title: str, **context) -> TemplateResponse:
    return TemplateResponse(
        request,
        template,
        {
            **admin.site.each_context(request),
            "title": title,
            "console_role": console_role(request),
            "can_operate": can_operate(request),
            "can_manage_keys": can_manage_keys(request),
            **context,
        },
    )


def _provider_or_404(provider: str):
    spec = get_provider(provider)
    if spec is None:
        raise Http404(f"No provider {provider!r}.")
    return spec


def dashboard_panel(request):
    return TemplateResponse(request, "observatory/dashboard_panel.html", dashboard_data(request))


def connections(request):
    if getattr(request, "tenant", None) is None:
        return _page(request, "observatory/connections.html", "Connections", groups=None)
    return _page(request, "observatory/connections.html", "Connections", groups=connection_data.connection_cards())


def connection_verify(request, provider: str):
    """Operators verify any provider, Redis included; the card comes back with the result (htmx) or the page does."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    _provider_or_404(provider)
    require_console_role(request, Membership.Role.OPERATOR)
    verification = integration_services.verify_provider(provider=provider, actor=request.user)
    forget_cached_status()
    if not request.htmx:
        level = messages.SUCCESS if verification.status == "ok" else messages.ERROR
        messages.add_message(
            request,
            level,
            f"Verify {provider}: {verification.status} {verification.error_code} (trace {verification.trace_id})",
        )
        return redirect(f"{reverse('observatory:connections')}#provider-{provider}")
    # A fragment: no page context (banner, sidebar), so the verify's trace holds only what the verify did.
    return TemplateResponse(
        request,
        "observatory/connection_card.html",
        {
            "card": connection_data.connection_card(provider),
            "verification": verification,
            "can_operate": True,
            "can_manage_keys": can_manage_keys(request),
        },
    )


def connection_keys(request, provider: str):
    """Owners set (masked fields; an empty field keeps its value) or clear a provider's keys."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    _provider_or_404(provider)
    require_console_role(request, Membership.Role.OWNER)
    if apply_key_form(request, provider):
        forget_cached_status()
    return redirect(f"{reverse('observatory:connections')}#provider-{provider}")


def connection_usage(request, provider: str):
    """The proof-of-use popout: the provider's latest usage events, optionally for one bot."""
    spec = _provider_or_404(provider)
    events = IntegrationUsageEvent.objects.filter(provider=provider)
    bot_id = request.GET.get("bot_id", "").strip()
    if bot_id.isdigit():
        events = events.filter(bot_id=int(bot_id))
    bot_ids = sorted(
        IntegrationUsageEvent.objects.filter(provider=provider, bot_id__isnull=False)
        .values_list("bot_id", flat=True)
        .distinct()[:200]
    )
    return TemplateResponse(
        request,
        "observatory/usage_popout.html",
        {
            "spec": spec,
            "events": list(events.order_by("-created_at", "-id")[:USAGE_EVENTS_SHOWN]),
            "bot_id": int(bot_id) if bot_id.isdigit() else None,
            "bot_ids": bot_ids,
            "shown": USAGE_EVENTS_SHOWN,
        },
    )


def trace_explorer(request):
    trace_id = request.GET.get("trace_id", "").strip()
    error = None
    timeline = None
    if trace_id and not is_well_formed(trace_id):
        error = "A trace id is 8 to 64 letters, digits and ._:- characters."
    elif trace_id and getattr(request, "tenant", None) is not None:
        timeline = trace_timeline(trace_id)
    return _page(
        request, "observatory/trace_explorer.html", "Trace explorer", trace_id=trace_id, timeline=timeline, error=error
    )
