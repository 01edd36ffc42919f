"""System checks for what must hold before the control plane may serve."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import OperationalError

from controlplane.dbroles import runtime_role_problems


@register()
def runtime_role_cannot_bypass_rls(app_configs, **kwargs):
    try:
        problems = runtime_role_problems()
    except OperationalError as exc:
        return [Warning(f"Could not check the runtime database role: {exc}", id="controlplane.W001")]
    return [
        Error(
            f"The runtime database connection could bypass row-level security: {problem}.",
            hint="Point DATABASE_URL at a NOSUPERUSER NOBYPASSRLS role that does not own the tables; "
            "migrations run as DATABASE_OWNER_URL.",
            id="controlplane.E001",
        )
        for problem in problems
    ]


@register()
def time_zone_is_utc(app_configs, **kwargs):
    if settings.TIME_ZONE != "UTC":
        return [Error("settings.TIME_ZONE is not 'UTC'", id="controlplane.E002")]
    return []


@register()
def autonomy_t2_limit_factor_is_a_fraction(app_configs, **kwargs):
    """A factor above 1 would give T2 more room than T3, and 0 or less would silently stop every T2 bot."""
    factor = settings.AUTONOMY_T2_LIMIT_FACTOR
    if not 0 < factor <= 1:
        return [
            Error(f"settings.AUTONOMY_T2_LIMIT_FACTOR is {factor}; it must be > 0 and <= 1", id="controlplane.E003")
        ]
    return []


@register()
def declared_hooks_resolve(app_configs, **kwargs):
    """A lower layer asks a higher one through a declared hook (controlplane.hooks); a missing one would drop that
    work (a kill's cancels, the system status) silently, so it stops the start-up instead."""
    from controlplane.hooks import hook_problems

    return [
        Error(f"settings.CONTROLPLANE_HOOKS: {problem}", hint="See controlplane/hooks.py.", id="controlplane.E004")
        for problem in hook_problems()
    ]
