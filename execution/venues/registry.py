"""Which adapter serves which venue. Sim venues are built in; live adapters register themselves at start-up."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from controlplane.errors import ErrorCode
from execution.venues.base import VenueAdapter, VenueError

_factories: dict[str, Callable[[], VenueAdapter]] = {}


def register_venue(name: str, factory: Callable[[], VenueAdapter]) -> None:
    _factories[name] = factory


def is_sim_venue(name: str) -> bool:
    return name in settings.SIM_VENUE_FILL_MODELS


def known_venue(name: str) -> bool:
    return is_sim_venue(name) or name in _factories


def adapter_for(name: str) -> VenueAdapter:
    """The adapter of ``name``; a venue with none is refused (no silent paper fallback for a live venue)."""
    if is_sim_venue(name):
        from execution.venues.sim import SimVenue

        return SimVenue(name)
    factory = _factories.get(name)
    if factory is None:
        raise VenueError(ErrorCode.INTEGRATION_KEY_MISSING, f"No venue adapter is installed for {name!r}.")
    return factory()
