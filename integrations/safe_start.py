"""The safe-start gate: may a bot with this venue, data source and stage start now?

Called by the bot lifecycle code (a higher layer) in the current tenant's context. A paper or live bot needs
its venue's and data source's keys set and verified; ``sim`` venues and ``imported`` bars need no key. A LIVE
venue's key must also be known to be trade-only: reported so by the venue, or confirmed by an owner where the
venue cannot tell (integrations.permissions).
"""

from __future__ import annotations

from controlplane.errors import ControlPlaneError, ErrorCode
from integrations import permissions
from integrations.checklist import provider_status_rows
from integrations.registry import get_provider

SIM_VENUE = "sim"
IMPORTED_DATA = "imported"


def _needed_providers(venue: str, data_source: str) -> list[tuple[str, str]]:
    needed = []
    if venue != SIM_VENUE:
        needed.append((venue, "venue"))
    if data_source != IMPORTED_DATA:
        needed.append((data_source, "data_source"))
    return needed


def safe_start_blockers(*, venue: str, data_source: str, stage: str) -> list[dict]:
    """The integrations that keep this bot from starting; empty when it may start.

    Each item: ``provider``, ``code`` (INTEGRATION_KEY_MISSING, INTEGRATION_UNVERIFIED or the last verify's
    failure code, or INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED), ``missing_env_vars``, ``message``,
    ``suggested_fix``. At ``stage`` LIVE the venue's key permissions are checked as well.
    """
    live = str(stage).upper() == "LIVE"
    needed = _needed_providers(venue, data_source)
    if not needed:
        return []
    rows = {row["provider"]: row for row in provider_status_rows()}
    blockers = []
    for name, role in needed:
        spec = get_provider(name)
        if spec is None:
            blockers.append(
                {
                    "provider": name,
                    "code": str(ErrorCode.INTEGRATION_KEY_MISSING),
                    "missing_env_vars": [],
                    "message": f"Unknown {role} {name!r}: it is neither {SIM_VENUE if role == 'venue' else IMPORTED_DATA!r} "
                    "nor a provider in the registry.",
                    "suggested_fix": "Pick a provider listed by GET /api/integrations/status.",
                }
            )
            continue
        row = rows[name]
        if row["connected"] and row["circuit_breaker"] != "open":
            blocker = permissions.live_blocker(spec, role) if live and role == "venue" else None
            if blocker:
                blockers.append(blocker)
            continue
        if row["connected"]:  # verified, but its calls are failing now: the breaker is open
            blockers.append(
                {
                    "provider": name,
                    "code": str(ErrorCode.INTEGRATION_UNREACHABLE),
                    "missing_env_vars": [],
                    "message": f"{spec.label} ({role}) is failing: its circuit breaker is open after repeated errors.",
                    "suggested_fix": ErrorCode.INTEGRATION_UNREACHABLE.suggested_fix,
                }
            )
            continue
        if row["missing_env_vars"]:
            message = f"{spec.label} ({role}) is missing {', '.join(row['missing_env_vars'])}."
        elif row["error_code"] == str(ErrorCode.INTEGRATION_UNVERIFIED):
            message = f"{spec.label} ({role}) is configured but not verified."
        else:
            message = f"{spec.label} ({role}) failed its last verification ({row['error_code']})."
        blockers.append(
            {
                "provider": name,
                "code": row["error_code"],
                "missing_env_vars": row["missing_env_vars"],
                "message": message,
                "suggested_fix": row["suggested_fix"],
            }
        )
    return blockers


def refusal_code(blockers: list[dict]) -> ErrorCode:
    """INTEGRATION_KEY_MISSING while any key is missing; the key-permission code when that is the only reason;
    otherwise INTEGRATION_UNVERIFIED (never verified, or the last verification failed: the blocker's own code says
    how)."""
    if any(b["code"] == str(ErrorCode.INTEGRATION_KEY_MISSING) for b in blockers):
        return ErrorCode.INTEGRATION_KEY_MISSING
    codes = {b["code"] for b in blockers}
    # A key's permissions are the one reason: say which, so the answer's fix is the right one.
    for code in (ErrorCode.INTEGRATION_KEY_TOO_POWERFUL, ErrorCode.INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED):
        if codes == {str(code)}:
            return code
    return ErrorCode.INTEGRATION_UNVERIFIED


def raise_if_blocked(*, venue: str, data_source: str, stage: str) -> None:
    """Refuse the start (409, ``refusal_code``) listing every blocker in ``details``."""
    blockers = safe_start_blockers(venue=venue, data_source=data_source, stage=stage)
    if blockers:
        raise ControlPlaneError(
            refusal_code(blockers),
            "This bot cannot start: " + " ".join(b["message"] for b in blockers),
            suggested_fix=blockers[0]["suggested_fix"],
            details={"blockers": blockers},
        )
