"""The declared hooks: the few places where a lower layer needs work done, or a fact kept, by a layer above it.

Each is declared once, in ``settings.CONTROLPLANE_HOOKS`` (name -> dotted path of the callable), and resolved by
that path when called; everything else imports what it needs directly (DESIGN.md section 3). A hook that is not
declared, or whose path does not resolve, stops the start-up (system check ``controlplane.E004``): there is no
silent default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

# name -> what the callable is asked to do (its signature and when it is called).
REQUIRED_HOOKS = {
    "bots.kill.cancel_orders": "(*, cancel_request_id, scope, tenant_id, bot_id) -> None: the OMS carries out a "
    "committed cancel request (a kill, a bot leaving LIVE) right away.",
    "status.compute": "() -> dict: the current tenant's system status, for the core's status cache.",
    "integrations.providers_in_use": "(tenant_id) -> set[str]: the venues and data sources the tenant's bots "
    "use, which the Keys Needed checklist requires.",
    "marketdata.bars_stored": "(*, instrument, timeframe, bar_ts) -> dict: after bars are stored and committed, the "
    "paper venue fills every tenant's working sim orders those bars reach.",
    "sms.send": "(*, tenant_id: int, to: str, body: str) -> str: send one SMS with the tenant's own provider keys "
    "(alerts, login codes); the provider's message id; raises ControlPlaneError when it was not accepted.",
}


def hook(name: str) -> Callable[..., Any]:
    """The declared callable of ``name``; raises (ImproperlyConfigured, ImportError) when it cannot be found."""
    from django.core.exceptions import ImproperlyConfigured

    declared = getattr(settings, "CONTROLPLANE_HOOKS", {})
    if name not in declared:
        raise ImproperlyConfigured(f"settings.CONTROLPLANE_HOOKS declares no hook {name!r}")
    return import_string(declared[name])


def hook_problems() -> list[str]:
    """Each required hook that is not declared or does not resolve to a callable, and each declared one nobody
    asks for (a typo in a name would otherwise leave the real one undeclared)."""
    declared = getattr(settings, "CONTROLPLANE_HOOKS", {})
    problems = []
    for name in sorted(REQUIRED_HOOKS):
        if name not in declared:
            problems.append(f"hook {name!r} is not declared")
            continue
        try:
            target = import_string(declared[name])
        except ImportError as exc:
            problems.append(f"hook {name!r} points at {declared[name]!r}, which cannot be imported: {exc}")
            continue
        if not callable(target):
            problems.append(f"hook {name!r} points at {declared[name]!r}, which is not callable")
    problems += [
        f"hook {name!r} is declared but no layer asks for it" for name in sorted(set(declared) - set(REQUIRED_HOOKS))
    ]
    return problems
