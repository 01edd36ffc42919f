"""The status banner on every console page (unfold's GLOBAL_CALLBACK feeds every page's context)."""

from __future__ import annotations

from controlplane.status import OK, cached_system_status

FIRST_BLOCKERS = 3


def page_status(request) -> dict | None:
    """The system status for this request's tenant, computed at most once per request (and cached a few seconds
    across requests); None when the page works in no tenant."""
    if not hasattr(request, "_console_status"):
        request._console_status = cached_system_status() if getattr(request, "tenant", None) else None
    return request._console_status


def banner_context(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated or not request.user.is_staff:
        return {}
    status = page_status(request)
    if status is None:
        return {
            "status_banner": {
                "status": "UNKNOWN",
                "blockers": [],
                "trace_id": None,
                "more": 0,
                "message": "No tenant selected: pick one in the header to see its status.",
            }
        }
    if status["status"] == OK:
        return {"status_banner": None}
    blockers = status.get("blockers") or []
    return {
        "status_banner": {
            "status": status["status"],
            "blockers": blockers[:FIRST_BLOCKERS],
            "more": max(len(blockers) - FIRST_BLOCKERS, 0),
            "trace_id": status["trace_id"],
            "checked_at": status.get("checked_at"),
            "message": None,
        }
    }
