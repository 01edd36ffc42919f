"""Which adapter serves which venue: a small register/lookup the OMS routes every order through.

Sim venues are built in; live adapters (Tradovate, Ironbeam, the ccxt venues) register below. A venue with no
adapter is refused, never served by a silent paper fallback.
"""

from __future__ import annotations

from collections.abc import Callable

from controlplane.books import is_sim_venue
from controlplane.errors import ErrorCode
from execution.venues.base import VenueAdapter, VenueError

# factory(*, bot_id: int | None) -> VenueAdapter, called per use so credentials are the current tenant's.
AdapterFactory = Callable[..., VenueAdapter]

_factories: dict[str, AdapterFactory] = {}


def register_venue(name: str, factory: AdapterFactory) -> None:
    _factories[name] = factory


register = register_venue


def known_venue(name: str) -> bool:
    return is_sim_venue(name) or name in _factories


def registered_venues() -> list[str]:
    return sorted(_factories)


def adapter_for(name: str, *, bot_id: int | None = None) -> VenueAdapter:
    """The adapter of ``name``, attributing its provider calls (proof of use) to ``bot_id``."""
    if is_sim_venue(name):
        from execution.venues.sim import SimVenue

        return SimVenue(name)
    factory = _factories.get(name)
    if factory is None:
        raise VenueError(ErrorCode.INTEGRATION_KEY_MISSING, f"No venue adapter is installed for {name!r}.")
    return factory(bot_id=bot_id)


def _register_live_venues() -> None:
    from execution.venues.ccxt_venue import CCXT_VENUES, CcxtVenue
    from execution.venues.ironbeam import IronbeamVenue
    from execution.venues.tradovate import TradovateVenue

    register_venue("tradovate", TradovateVenue)
    register_venue("ironbeam", IronbeamVenue)
    for venue in CCXT_VENUES:
        register_venue(venue, lambda *, bot_id=None, _venue=venue: CcxtVenue(_venue, bot_id=bot_id))


_register_live_venues()
