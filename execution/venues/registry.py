"""Which adapter serves a venue: a small register/lookup the OMS routes every order through.

Live adapters register below; the sim venue registers itself from its own module. A venue nobody registered
is refused (``UnknownVenue``), never served by a default.
"""

from __future__ import annotations

from collections.abc import Callable

from execution.venues.base import VenueAdapter

# factory(*, bot_id: int | None) -> VenueAdapter, called per use so credentials are the current tenant's.
AdapterFactory = Callable[..., VenueAdapter]

_factories: dict[str, AdapterFactory] = {}


class UnknownVenue(KeyError):
    """No adapter is registered for this venue."""


def register(venue: str, factory: AdapterFactory) -> None:
    _factories[venue] = factory


def registered_venues() -> list[str]:
    return sorted(_factories)


def adapter_for(venue: str, *, bot_id: int | None = None) -> VenueAdapter:
    """A fresh adapter for ``venue`` in the current tenant, attributing its provider calls to ``bot_id``."""
    try:
        factory = _factories[venue]
    except KeyError:
        raise UnknownVenue(venue) from None
    return factory(bot_id=bot_id)


def _register_live_venues() -> None:
    from execution.venues.ccxt_venue import CCXT_VENUES, CcxtVenue
    from execution.venues.ironbeam import IronbeamVenue
    from execution.venues.tradovate import TradovateVenue

    register("tradovate", TradovateVenue)
    register("ironbeam", IronbeamVenue)
    for venue in CCXT_VENUES:
        register(venue, lambda *, bot_id=None, _venue=venue: CcxtVenue(_venue, bot_id=bot_id))


_register_live_venues()
