"""The one place alerts leave the system. Until an SMS provider is wired (Twilio's client in integrations/), the
sink is the log: one ERROR line per alert, with structured fields and the bound trace id, which a log pipeline can
page on. Plugging SMS in later means changing :func:`alert` only; callers stay as they are."""

from __future__ import annotations

import logging
from typing import Any

from controlplane.trace import current_trace_id

logger = logging.getLogger("controlplane.alerts")


def alert(*, event: str, message: str, tenant_id: int | None = None, bot_id: int | None = None, **fields: Any) -> None:
    """Raise an operator alert. ``event`` is a stable machine name (``circuit_breaker.tripped``); ``fields`` are
    the values that explain it (JSON-able; names of ``logging.LogRecord`` attributes such as ``name`` or
    ``message`` are not allowed)."""
    logger.error(
        message,
        extra={"alert": event, "tenant_id": tenant_id, "bot_id": bot_id, "trace_id": current_trace_id(), **fields},
    )
