"""Books: the paper (sim venue) and live (the bot's real venue and account) records of one bot, never mixed.

A bot's positions, equity marks and high-water marks, profit variables, the tenant's venue inventory and the
reconcile reports each belong to exactly one book (DESIGN.md invariant 12). Which book is decided by one rule,
:func:`book_for_venue`: an order, a fill or a position at a sim venue is paper, anything else is live. Nothing
learned on paper (a +2 on the sim venue, a paper drawdown, a paper day's loss) is ever read as a fact about the
venue.

Here, in the core, because every layer stores or reads a book: ``traces`` (profit variables), ``bots``
(reconcile reports, the LIVE gate) and ``execution`` (positions, fills, marks). It reads settings only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Book(models.TextChoices):
    PAPER = "paper", "Paper (sim venue)"
    LIVE = "live", "Live (the bot's venue and account)"


def is_sim_venue(venue: str) -> bool:
    """A venue served by the sim fill model (``settings.SIM_VENUE_FILL_MODELS``): paper trading on real bars."""
    return venue in settings.SIM_VENUE_FILL_MODELS


def book_for_venue(venue: str) -> Book:
    """The book an order, a fill or a position at ``venue`` belongs to."""
    return Book.PAPER if is_sim_venue(venue) else Book.LIVE


def venue_in_book(book: str, field: str = "venue") -> Q:
    """A filter on a venue field (orders, fills) keeping the rows of ``book``."""
    sim = Q(**{f"{field}__in": list(settings.SIM_VENUE_FILL_MODELS)})
    return sim if book == Book.PAPER else ~sim
