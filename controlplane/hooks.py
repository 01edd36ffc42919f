"""Start-up hooks through which higher apps feed lower ones (DESIGN.md: a lower layer never imports a higher one).

A higher app registers a callable in its ``AppConfig.ready()``; readers call :func:`call` and get ``default``
when nobody registered one yet. Known hooks (all take ``tenant_id``, return JSON-able values):

- ``bots.by_autonomy_tier``: ``(tenant_id) -> dict[str, int]``, bot counts per autonomy tier.
- ``scheduler.last_tick_at``: ``(tenant_id) -> datetime | None``, when the last runner tick ran.
- ``integrations.providers_in_use``: ``(tenant_id) -> set[str]``, the venues and data sources the tenant's
  enabled bots use (registry provider names; ``sim`` and ``imported`` need no key and are left out).
- ``status.market_data_problems``: ``(tenant_id) -> list[dict]``, stale or missing market data, each
  ``{"code", "component", "message", "suggested_fix"}``; any makes system status DEGRADED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KNOWN_HOOKS = frozenset(
    {"bots.by_autonomy_tier", "scheduler.last_tick_at", "integrations.providers_in_use", "status.market_data_problems"}
)

_registry: dict[str, Callable[..., Any]] = {}


def register(name: str, fn: Callable[..., Any]) -> None:
    if name not in KNOWN_HOOKS:
        raise ValueError(f"unknown hook {name!r}; known: {sorted(KNOWN_HOOKS)}")
    _registry[name] = fn


def unregister(name: str) -> None:
    _registry.pop(name, None)


def is_registered(name: str) -> bool:
    return name in _registry


def call(name: str, *args, default: Any = None, **kwargs) -> Any:
    fn = _registry.get(name)
    return default if fn is None else fn(*args, **kwargs)
