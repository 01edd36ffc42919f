"""Which keys are needed now: the enabled capabilities, the Keys Needed checklist, and the status rows.

Enabled capabilities (fail closed, decided here and documented in the README):

- **Market data** is always enabled: at least one market-data provider (databento or polygon) must be fully
  configured, since no bot can run on live data without one.
- **Infrastructure**: Redis (REDIS_URL, from the deployment).
- **What the tenant's bots use**: every venue and data source of the tenant's enabled bots, through the declared
  hook ``integrations.providers_in_use`` (bots answers it; controlplane.hooks). With no bots, no broker, venue, AI
  or SMS key is required; they are listed as optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from controlplane import hooks, tenancy
from controlplane.errors import ErrorCode
from integrations import credentials, permissions
from integrations.models import IntegrationCredential, IntegrationUsageEvent, IntegrationVerification
from integrations.providers.base import BREAKER_UNKNOWN, breaker_states
from integrations.registry import Category, Provider, all_providers, get_provider, providers_in


@dataclass(frozen=True)
class Requirement:
    """A capability that is on, satisfied by any one of ``providers`` being fully configured."""

    capability: str
    providers: tuple[str, ...]


def providers_in_use() -> set[str]:
    tenant_id = tenancy.current_tenant_id()
    if tenant_id is None:
        return set()
    used = hooks.hook("integrations.providers_in_use")(tenant_id)
    return {p for p in used if get_provider(p) is not None}


def enabled_requirements() -> list[Requirement]:
    requirements = [
        Requirement("market data for live ticks", tuple(p.provider for p in providers_in(Category.MARKET_DATA))),
        Requirement("Celery broker, cache and rate limits", ("redis",)),
    ]
    for name in sorted(providers_in_use()):
        spec = get_provider(name)
        requirements.append(Requirement(spec.unlocks or f"bots using {name}", (name,)))
    return requirements


def _fix_for_missing(spec: Provider, missing: list[str]) -> str:
    where = (
        "the deployment's environment" if not spec.tenant_configurable else "the console (Connections, or Keys Needed)"
    )
    return f"Set {', '.join(missing)} in {where}, then verify {spec.provider}."


def missing_key_blockers() -> list[dict]:
    """One blocker per key that an enabled capability needs and nobody set (a one-of group is one blocker)."""
    blockers = []
    for requirement in enabled_requirements():
        specs = [get_provider(p) for p in requirement.providers]
        missing_by_provider = {s.provider: credentials.missing_env_vars(s) for s in specs}
        if any(not missing for missing in missing_by_provider.values()):
            continue
        if len(specs) == 1:
            spec = specs[0]
            for name in missing_by_provider[spec.provider]:
                blockers.append(
                    {
                        "code": str(ErrorCode.INTEGRATION_KEY_MISSING),
                        "component": f"integrations.{spec.provider}",
                        "provider": spec.provider,
                        "missing_env_vars": [name],
                        "message": f"{name} is missing: {requirement.capability} needs {spec.label}.",
                        "suggested_fix": _fix_for_missing(spec, [name]),
                    }
                )
        else:
            options = " or ".join(f"{', '.join(m)} ({p})" for p, m in missing_by_provider.items())
            blockers.append(
                {
                    "code": str(ErrorCode.INTEGRATION_KEY_MISSING),
                    "component": "integrations.market_data",
                    "provider": None,
                    "missing_env_vars": sorted({n for m in missing_by_provider.values() for n in m}),
                    "message": f"No provider for {requirement.capability} is configured.",
                    "suggested_fix": f"Set {options} in the console (Connections, or Keys Needed), then verify it.",
                }
            )
    return blockers


def keys_needed() -> dict:
    """The checklist, grouped by category in the registry's order."""
    required_providers = {}
    for requirement in enabled_requirements():
        for name in requirement.providers:
            required_providers.setdefault(name, requirement)
    groups = []
    for category in Category.ORDER:
        rows = []
        for spec in providers_in(category):
            states = credentials.field_states(spec)
            requirement = required_providers.get(spec.provider)
            for state in states:
                needed = bool(requirement) and state.required
                rows.append(
                    {
                        **state.as_dict(),
                        "provider": spec.provider,
                        "provider_label": spec.label,
                        "unlocks": spec.unlocks,
                        "needed_now": needed,
                        "tenant_configurable": spec.tenant_configurable,
                        "needed_for": requirement.capability if needed else None,
                        "one_of": list(requirement.providers) if needed and len(requirement.providers) > 1 else None,
                        "suggested_fix": None if state.is_set else _fix_for_missing(spec, [state.name]),
                        "docs_url": spec.docs_url,
                    }
                )
        groups.append({"category": category, "keys": rows})
    blockers = missing_key_blockers()
    return {"complete": not blockers, "blockers": blockers, "groups": groups}


# --- status rows -------------------------------------------------------------------------------------------------


def latest_verifications() -> dict[str, IntegrationVerification]:
    rows = IntegrationVerification.objects.order_by("provider", "-verified_at", "-id").distinct("provider")
    return {v.provider: v for v in rows}


def _usage_by_provider(providers: list[str]) -> dict[str, dict]:
    """Per provider: successful uses and failures in the last 24 h, and when each last happened.

    Only a successful operation is proof that the key works; a failed one is counted apart, never as a use."""
    since = timezone.now() - timedelta(hours=24)
    ok = Q(status=IntegrationUsageEvent.Status.OK)
    counts = {
        row["provider"]: row
        for row in IntegrationUsageEvent.objects.filter(created_at__gte=since)
        .values("provider")
        .annotate(ok_24h=Count("id", filter=ok), failed_24h=Count("id", filter=~ok))
    }
    usage = {}
    for provider in providers:
        events = IntegrationUsageEvent.objects.filter(provider=provider).order_by("-created_at")
        usage[provider] = {
            "ok_24h": counts.get(provider, {}).get("ok_24h", 0),
            "failed_24h": counts.get(provider, {}).get("failed_24h", 0),
            "last_used_at": events.filter(ok).values_list("created_at", flat=True).first(),
            "last_failed_at": events.exclude(ok).values_list("created_at", flat=True).first(),
        }
    return usage


def _fix_for(spec: Provider, missing: list[str], code: ErrorCode | None, *, live_check_failed: bool) -> str | None:
    if code is None:
        return None
    if missing:
        return _fix_for_missing(spec, missing)
    if live_check_failed:
        return "Check REDIS_URL and that Redis is running and answering, then press Verify on its card."
    return code.suggested_fix


def provider_status_rows(*, with_fields: bool = False) -> list[dict]:
    """One row per provider; nothing defaults to a success value (never verified means not connected, an
    unreadable breaker is ``unknown``). ``with_fields`` adds each credential field's state (set or missing, hint,
    by whom), read once with the rest, for the console's cards; never a value."""
    tenant_id = tenancy.require_tenant_id()
    specs = all_providers()
    verifications = latest_verifications()
    usage = _usage_by_provider([spec.provider for spec in specs])
    breakers = breaker_states([spec.provider for spec in specs], tenant_id)
    changed = {
        row["provider"]: row["changed_at"]
        for row in IntegrationCredential.objects.values("provider").annotate(changed_at=Max("set_at"))
    }
    rows = []
    for spec in specs:
        states = credentials.field_states(spec)
        missing = credentials.missing_env_vars(spec, states)
        verification = verifications.get(spec.provider)
        # Redis was just read live (the breakers are kept there): unreadable is not connected, whatever the last
        # verify said.
        redis_unreadable = spec.provider == "redis" and breakers is None
        stale = (
            verification is not None
            and changed.get(spec.provider)
            and changed[spec.provider] > verification.verified_at
        )
        if missing:
            code = ErrorCode.INTEGRATION_KEY_MISSING
        elif redis_unreadable:
            code = ErrorCode.INTEGRATION_UNREACHABLE
        elif verification is None or stale:
            code = ErrorCode.INTEGRATION_UNVERIFIED
        elif verification.status != IntegrationVerification.Status.OK:
            code = (
                ErrorCode(verification.error_code)
                if verification.error_code in ErrorCode.__members__
                else ErrorCode.INTEGRATION_UNREACHABLE
            )
        else:
            code = None
        used = usage[spec.provider]
        rows.append(
            {
                "provider": spec.provider,
                "category": spec.category,
                "configured": not missing,
                "connected": code is None,
                "source": credentials.source_of(states),
                "last_verified_at": verification.verified_at if verification else None,
                "last_verification_status": verification.status if verification else None,
                "last_verification_error_code": (verification.error_code or None) if verification else None,
                "last_verification_latency_ms": verification.latency_ms if verification else None,
                "last_verification_trace_id": verification.trace_id if verification else None,
                # Brokers and venues: what the last verify read about the key, and whether LIVE waits for an owner.
                "key_permissions": verification.permissions if verification else None,
                "key_permissions_confirmation": permissions.confirmation_state(verification)
                if verification and permissions.applies_to(spec) and verification.permissions is not None
                else None,
                "last_used_at": used["last_used_at"],
                "last_failed_at": used["last_failed_at"],
                "proof_of_use_count_24h": used["ok_24h"],
                "failed_use_count_24h": used["failed_24h"],
                "missing_env_vars": missing,
                "error_code": str(code) if code else None,
                "suggested_fix": _fix_for(spec, missing, code, live_check_failed=redis_unreadable),
                "circuit_breaker": BREAKER_UNKNOWN if breakers is None else breakers[spec.provider],
                "unlocks": spec.unlocks,
                "live_check_failed": redis_unreadable,
            }
        )
        if with_fields:
            rows[-1]["fields"] = [state.as_dict() | {"secret": state.secret} for state in states]
    return rows
