"""What the integrations contribute to system status: missing keys block, unverified or failing providers degrade."""

from __future__ import annotations

from controlplane.errors import ErrorCode
from integrations.checklist import missing_key_blockers, provider_status_rows


def integration_blockers_and_problems() -> tuple[list[dict], list[dict], dict]:
    blockers = [{k: b[k] for k in ("code", "component", "message", "suggested_fix")} for b in missing_key_blockers()]
    rows = provider_status_rows()
    problems = []
    for row in rows:
        if row["configured"] and not row["connected"]:
            if row.get("live_check_failed"):
                what = f"cannot be reached now ({row['error_code']})"
            elif row["error_code"] == ErrorCode.INTEGRATION_UNVERIFIED:
                what = "is not verified"
            else:
                what = f"failed its last verification ({row['error_code']})"
            problems.append(
                {
                    "code": row["error_code"],
                    "component": f"integrations.{row['provider']}",
                    "message": f"{row['provider']} is configured but {what}.",
                    "suggested_fix": row["suggested_fix"],
                }
            )
        if row["circuit_breaker"] == "open":
            problems.append(
                {
                    "code": str(ErrorCode.INTEGRATION_UNREACHABLE),
                    "component": f"integrations.{row['provider']}",
                    "message": f"{row['provider']} calls are suspended: its circuit breaker is open.",
                    "suggested_fix": ErrorCode.INTEGRATION_UNREACHABLE.suggested_fix,
                }
            )
    summary = {
        "total": len(rows),
        "configured": sorted(r["provider"] for r in rows if r["configured"]),
        "connected": sorted(r["provider"] for r in rows if r["connected"]),
        "failing": sorted(r["provider"] for r in rows if r["configured"] and not r["connected"]),
        "missing_keys": sum(1 for _ in blockers),
    }
    return blockers, problems, summary
