"""Reads of the scanners' record that the API and the bot page share."""

from __future__ import annotations

from django.db.models import QuerySet

from execution.models import ArbPnl, ArbSpread


def bot_arb_pnl(*, bot_id: int) -> QuerySet[ArbPnl]:
    """The bot's settled spot arbitrage intents, newest first (current tenant: the manager scopes it)."""
    return ArbPnl.objects.filter(bot_id=bot_id).order_by("-intent_id")


def bot_arb_spreads(*, bot_id: int) -> QuerySet[ArbSpread]:
    """The bot's priced pairs, newest scan first."""
    return ArbSpread.objects.filter(bot_id=bot_id).order_by("-scanned_at", "-net_edge_bps", "id")
