"""Re-arming after a kill: what an owner releases, measured and written into the record before it is released.

The kill services (bots.services.kills) hold the latch rules; this layer adds what only the judging layer can
read, our books (execution) beside the venue's last word (reconciliations):

- a bot: without a flat, matching reconcile of its book since the kill, the owner's ``positions_decision`` is
  recorded with the positions it accepts (our book's quantities and the latest reconcile, whatever it said);
- the tenant and the platform: every LIVE bot not known to be flat is listed in the answer and the audit event.
  A LIVE bot is known flat only when our live book holds nothing AND its latest live reconcile was MATCHED and
  flat; a bot never reconciled is listed (the venue's side is unknown, never assumed empty).

The second factor these releases need is checked at the edge (controlplane.stepup), before any of this runs.
"""

from __future__ import annotations

from django.db import transaction

from bots import services as bot_services
from bots.models import Bot, GlobalKillSwitch, Reconciliation, Stage, TenantKillSwitch
from bots.routing import order_book
from controlplane import tenancy
from controlplane.books import Book
from controlplane.selectors import all_tenant_ids
from execution.models import StrategyPosition

POSITION_TOLERANCE = 1e-9


def _reconciliation_summary(report: Reconciliation | None) -> dict | None:
    if report is None:
        return None
    return {
        "id": report.id,
        "status": report.status,
        "is_flat": report.is_flat,
        "venue": report.venue,
        "internal_positions": report.internal_positions,
        "venue_positions": report.venue_positions,
        "created_at": report.created_at.isoformat(),
    }


def book_positions(*, bot_ids: list[int], book: str) -> dict[int, dict[str, str]]:
    """Each bot's non-zero positions in ``book`` by our fills, as exact decimal strings per instrument symbol."""
    held: dict[int, dict[str, str]] = {bot_id: {} for bot_id in bot_ids}
    rows = (
        StrategyPosition.objects.filter(bot_id__in=bot_ids, book=book)
        .exclude(quantity=0)
        .values_list("bot_id", "instrument__symbol", "quantity")
    )
    for bot_id, symbol, quantity in rows:
        held[bot_id][symbol] = str(quantity.normalize())
    return held


def _latest_reconciliation(bot: Bot, book: str) -> Reconciliation | None:
    return Reconciliation.objects.filter(bot=bot, book=book).order_by("-id").first()


def accepted_positions(bot: Bot) -> dict:
    """What an owner's positions decision accepts for ``bot``: its book, our quantities there and the latest
    reconcile of that book (None when it was never reconciled)."""
    book = order_book(bot)
    return {
        "book": str(book),
        "positions": book_positions(bot_ids=[bot.id], book=book)[bot.id],
        "latest_reconciliation": _reconciliation_summary(_latest_reconciliation(bot, book)),
    }


def live_bots_not_flat() -> list[dict]:
    """The tenant in context's LIVE bots not known to be flat, each with why (see the module's docstring)."""
    bots = list(Bot.objects.filter(stage=Stage.LIVE).order_by("id"))
    held = book_positions(bot_ids=[bot.id for bot in bots], book=Book.LIVE)
    latest = {
        report.bot_id: report
        for report in Reconciliation.objects.filter(bot__in=bots, book=Book.LIVE)
        .order_by("bot_id", "-id")
        .distinct("bot_id")
    }
    listed = []
    for bot in bots:
        report = latest.get(bot.id)
        reasons = []
        if held[bot.id]:
            reasons.append("our live book holds positions")
        if report is None:
            reasons.append("never reconciled with its venue")
        elif report.status != Reconciliation.Status.MATCHED or not report.is_flat:
            reasons.append(f"its latest reconcile was {report.status}{'' if report.is_flat else ', not flat'}")
        if reasons:
            listed.append(
                {
                    "tenant_id": bot.tenant_id,
                    "bot_id": bot.id,
                    "name": bot.name,
                    "venue": bot.venue,
                    "killed": bot.killed,
                    "positions": held[bot.id],
                    "latest_reconciliation": _reconciliation_summary(report),
                    "why": "; ".join(reasons),
                }
            )
    return listed


def bot_rearm(*, bot_id: int, actor, reason: str, positions_decision: str | None = None) -> Bot:
    """Unkill one bot (bots.services.bot_unkill's rules), recording what a positions decision accepts, read in the
    same transaction as the release."""
    with transaction.atomic():
        bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
        accepted = accepted_positions(bot) if bot is not None and positions_decision is not None else None
        return bot_services.bot_unkill(
            bot_id=bot_id,
            actor=actor,
            reason=reason,
            positions_decision=positions_decision,
            accepted_positions=accepted,
        )


def tenant_rearm(*, actor, reason: str) -> tuple[TenantKillSwitch, list[dict]]:
    """Unkill the tenant in context; answers with the switch and the LIVE bots that are not flat."""
    with transaction.atomic():
        not_flat = live_bots_not_flat()
        switch = bot_services.tenant_unkill(actor=actor, reason=reason, live_bots_not_flat=not_flat)
    return switch, not_flat


def system_rearm(*, actor, reason: str) -> tuple[GlobalKillSwitch, list[dict]]:
    """Unkill the platform; answers with every tenant's LIVE bots that are not flat (read one tenant context at a
    time: row-level security allows no cross-tenant read)."""
    not_flat: list[dict] = []
    for tenant_id in all_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            not_flat.extend(live_bots_not_flat())
    switch = bot_services.system_unkill(actor=actor, reason=reason, live_bots_not_flat=not_flat)
    return switch, not_flat
