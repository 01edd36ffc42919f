"""Which adapter serves an order's venue: the OMS routes every send, lookup and cancel through ``adapter_for``.

Sim venues are served here by :class:`execution.orders.paper_venue.SimVenue` (paper trading is execution's own); every
other venue is asked of the live registry below us (``integrations.venues.registry``), which refuses a venue it
has no adapter for.
"""

from __future__ import annotations

from controlplane.books import is_sim_venue
from execution.orders.paper_venue import SimVenue
from integrations.venues.base import VenueAdapter
from integrations.venues.registry import live_adapter_for


def adapter_for(name: str, *, bot_id: int | None = None) -> VenueAdapter:
    """The adapter of ``name``, attributing its provider calls (proof of use) to ``bot_id``."""
    if is_sim_venue(name):
        return SimVenue(name)
    return live_adapter_for(name, bot_id=bot_id)
