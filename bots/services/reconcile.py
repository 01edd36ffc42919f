"""Reconcile: the bot's positions against its venue's, through the venue's registered position source."""

from __future__ import annotations

from django.db import transaction

from bots import hooks
from bots.models import Reconciliation
from bots.services.common import _actor_label, _locked_bot
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id


POSITION_TOLERANCE = 1e-9


def bot_reconcile(*, bot_id: int, actor=None, actor_name: str | None = None) -> Reconciliation:
    """Compare the bot's positions with its venue's through the venue's registered position source. A
    difference flags the bot (blocking starts and orders); a match clears the flag. No source: refused."""
    label = _actor_label(actor, actor_name)
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        source = hooks.position_source_for(bot.venue)
        if source is None:
            raise ControlPlaneError(
                ErrorCode.RECONCILE_SOURCE_MISSING,
                f"No position source is installed for venue {bot.venue!r}; bot {bot.name} was not compared.",
                details={"venue": bot.venue},
            )
        snapshot = source(bot=bot)
        instruments = sorted(set(snapshot.internal) | set(snapshot.venue))
        differences = {
            symbol: {"internal": snapshot.internal.get(symbol, 0.0), "venue": snapshot.venue.get(symbol, 0.0)}
            for symbol in instruments
            if abs(snapshot.internal.get(symbol, 0.0) - snapshot.venue.get(symbol, 0.0)) > POSITION_TOLERANCE
        }
        is_flat = all(abs(q) <= POSITION_TOLERANCE for q in (*snapshot.internal.values(), *snapshot.venue.values()))
        result = Reconciliation.objects.create(
            bot=bot, venue=bot.venue,
            status=Reconciliation.Status.MISMATCH if differences else Reconciliation.Status.MATCHED,
            internal_positions=snapshot.internal, venue_positions=snapshot.venue, differences=differences,
            is_flat=is_flat, requested_by=label, trace_id=current_trace_id(),
        )
        flagged_before = bot.reconcile_mismatch
        bot.reconcile_mismatch = bool(differences)
        bot.save(update_fields=["reconcile_mismatch", "updated_at"])
        audit_record(action="bot.reconcile", resource_type="bot", resource_id=bot.id, actor=actor,
                     actor_name=actor_name, before={"reconcile_mismatch": flagged_before},
                     after={"reconcile_mismatch": bot.reconcile_mismatch, "reconciliation_id": result.id,
                            "status": result.status, "differences": differences})
    return result
