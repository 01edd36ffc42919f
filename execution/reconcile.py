"""The scheduled live reconcile: every RUNNING LIVE bot of the tenant against its venue, through the same service
as ``POST /api/bots/{id}/reconcile`` (a difference flags the bot and blocks its orders until a reconcile matches)."""

from __future__ import annotations

import logging

from bots.models import Runner, Stage
from bots.services import bot_reconcile
from controlplane.errors import ControlPlaneError

logger = logging.getLogger(__name__)
ACTOR = "beat:reconcile"


def reconcile_running_live_bots() -> dict:
    """Reconcile each RUNNING LIVE bot of the current tenant; a venue that cannot answer is reported per bot (the
    bot keeps its flag as it was: nothing is assumed flat) and the others still run."""
    bot_ids = sorted(
        set(
            Runner.objects.filter(
                status=Runner.Status.RUNNING, mode=Runner.Mode.LIVE, bot__stage=Stage.LIVE
            ).values_list("bot_id", flat=True)
        )
    )
    result: dict = {"matched": [], "mismatched": [], "failed": []}
    for bot_id in bot_ids:
        try:
            reconciliation = bot_reconcile(bot_id=bot_id, actor_name=ACTOR)
        except ControlPlaneError as error:
            logger.warning("live reconcile failed", extra={"bot_id": bot_id, "error_code": str(error.code)})
            result["failed"].append({"bot_id": bot_id, "error_code": str(error.code), "message": error.message})
            continue
        key = "mismatched" if reconciliation.differences else "matched"
        result[key].append(bot_id)
    return result
