"""Which live adapter serves which venue: Tradovate, Ironbeam and the four ccxt venues.

Sim venues are not here: they are execution's (``execution.orders.routing`` serves them and asks this registry
for every other venue). A venue with no adapter is refused, never served by a silent paper fallback.
"""

from __future__ import annotations

from collections.abc import Callable

from controlplane.books import is_sim_venue
from controlplane.errors import ErrorCode
from integrations.providers.ccxt_venue import CCXT_VENUES, CcxtVenue
from integrations.providers.ironbeam.venue import IronbeamVenue
from integrations.providers.tradovate.venue import TradovateVenue
from integrations.venues.base import VenueAdapter, VenueError

# factory(*, bot_id: int | None) -> VenueAdapter, called per use so credentials are the current tenant's.
AdapterFactory = Callable[..., VenueAdapter]

_factories: dict[str, AdapterFactory] = {}


def register_venue(name: str, factory: AdapterFactory) -> None:
    _factories[name] = factory


def is_live_venue(name: str) -> bool:
    return name in _factories


def known_venue(name: str) -> bool:
    """A venue an order may name: a sim venue (paper, served by execution) or one with a live adapter here."""
    return is_sim_venue(name) or is_live_venue(name)


def live_venues() -> list[str]:
    return sorted(_factories)


def live_adapter_for(name: str, *, bot_id: int | None = None) -> VenueAdapter:
    """The live adapter of ``name``, attributing its provider calls (proof of use) to ``bot_id``."""
    factory = _factories.get(name)
    if factory is None:
        raise VenueError(ErrorCode.INTEGRATION_KEY_MISSING, f"No venue adapter is installed for {name!r}.")
    return factory(bot_id=bot_id)


register_venue("tradovate", TradovateVenue)
register_venue("ironbeam", IronbeamVenue)
for _venue in CCXT_VENUES:
    register_venue(_venue, lambda *, bot_id=None, _venue=_venue: CcxtVenue(_venue, bot_id=bot_id))
