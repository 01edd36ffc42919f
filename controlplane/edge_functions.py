"""The decision table for the retired Supabase edge functions: one source for the 410 guard and the inventory.

The master spec's PHASE 2 decides, per function, DELETE (the control plane already does it: name the endpoint),
MIGRATE (its capability moved here: name the endpoint that now does it, or MISSING) or KEEP (auth only). The guard
in ``controlplane.legacy`` answers a stray caller with the replacement below, and ``manage.py edge_inventory``
prints the same rows for an operator's old tree, so the two can never disagree.

Nothing is KEEP: the spec keeps Supabase only "if intentionally using Supabase Auth", and this control plane
replaces Supabase Auth with Django auth, API tokens and its own 2FA. The 2FA and SMS functions therefore MIGRATE.

Direct order writers (the five venue functions, ``sim-execute-order``) and the two arbitrage functions are MIGRATE:
their capability, trading on a venue, lives on in the OMS behind intents; nothing here writes an order directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    DELETE = "DELETE"
    MIGRATE = "MIGRATE"
    KEEP = "KEEP"


# What the inventory says of a function the table does not know and that still does something: nobody has decided
# where it went, and pretending an endpoint exists would be a lie.
MISSING = "MISSING"


@dataclass(frozen=True)
class EdgeDecision:
    name: str
    decision: Decision
    replacement: str
    # True when the row came from the table (or a prefix rule), False for a function the table does not know.
    known: bool = True


def _delete(replacement: str) -> tuple[Decision, str]:
    return Decision.DELETE, replacement


def _migrate(replacement: str) -> tuple[Decision, str]:
    return Decision.MIGRATE, replacement


DECISIONS: dict[str, tuple[Decision, str]] = {
    # PHASE 0 and PHASE 2 "DELETE in Supabase (duplicates Express)": the control plane had these before the cut.
    "promote-bot": _delete("POST /api/bots/{id}/promote"),
    "promotion-engine": _delete("POST /api/bots/{id}/promote"),
    "demotion-engine": _delete("POST /api/bots/{id}/demote"),
    "create-starter-bots": _delete("POST /api/bots/starter-pack"),
    "reconcile-bot-execution": _delete("POST /api/bots/{id}/reconcile"),
    "system-proof": _delete("GET /api/system/status"),
    "kill-engine": _delete("POST /api/bots/{id}/kill, POST /api/tenant/kill or POST /api/system/kill"),
    "runner-controller": _delete("POST /api/runners/start and POST /api/runners/{id}/stop"),
    "start-runner": _delete("POST /api/runners/start"),
    "restart-runner": _delete("POST /api/runners/{id}/restart"),
    "runner-heartbeat": _delete("nothing: runners heartbeat inside the control plane"),
    "force-tick": _delete("python manage.py tick"),
    "job-dispatcher": _delete("POST /api/jobs"),
    "job-processor": _delete("GET /api/jobs/{id}"),
    "job-worker": _delete("GET /api/jobs/{id}"),
    "job-watchdog": _delete("nothing: the watchdog runs on Celery beat"),
    "autonomy-watchdog": _delete("nothing: the supervisor runs on Celery beat"),
    # PHASE 2 "MIGRATE TO EXPRESS": the capability moved into this control plane.
    "runner-tick": _migrate("nothing: ticks run on the control plane's Celery beat"),
    "sim-execute-order": _migrate("POST /api/intents"),
    "risk-engine": _migrate("nothing: the risk engine runs in front of every order"),
    "run-backtest": _migrate("POST /api/backtests"),
    "historical-data": _migrate("python manage.py import_bars or the market-data providers"),
    "market-hours": _migrate("GET /api/market-hours?instrument=..."),
    "broker-tradovate": _migrate("POST /api/intents"),
    "broker-ironbeam": _migrate("POST /api/intents"),
    # The migration summary's direct order writers and arbitrage functions: intents, executed by the OMS.
    "live-trading": _migrate("POST /api/intents"),
    "kraken-trading": _migrate("POST /api/intents"),
    "coinbase-trading": _migrate("POST /api/intents"),
    "binance-us-trading": _migrate("POST /api/intents"),
    "hyperliquid": _migrate("POST /api/intents"),
    "cross-exchange-arbitrage": _migrate("POST /api/intents (multi-leg)"),
    "funding-arbitrage": _migrate("POST /api/intents (multi-leg)"),
    # PHASE 2 "KEEP ONLY IF INTENTIONALLY USING SUPABASE AUTH": we do not, so these moved too.
    "send-2fa-code": _migrate("POST /api/auth/2fa/send"),
    "verify-2fa-code": _migrate("POST /api/auth/2fa/verify"),
    "send-sms-alert": _migrate(
        "nothing: alerts leave through the control plane to the tenant's recipients "
        "(GET/POST /api/tenant/alert-recipients; POST /api/tenant/alert-recipients/{id}/test sends a test)"
    ),
}

# PHASE 2 names whole families by prefix ("all backtest-*", "ALL strategy-lab-*"); a prefix row answers for any
# member the table does not name itself.
PREFIX_DECISIONS: tuple[tuple[str, Decision, str], ...] = (
    ("backtest-", Decision.MIGRATE, "POST /api/backtests or POST /api/backtests/matrix"),
    ("strategy-lab", Decision.MIGRATE, "the /api/lab/experiments endpoints"),
)

# The "audit/health/smoke" part of PHASE 2's DELETE list, recognised by name: checks of the old system itself.
DELETE_NAME_MARKERS = ("audit", "health", "smoke")

REPLACEMENTS: dict[str, str] = {name: replacement for name, (_, replacement) in DECISIONS.items()}


def decision_for(name: str) -> EdgeDecision | None:
    """The table's row for ``name`` (exact name first, then a prefix rule), or None when the table has none."""
    if name in DECISIONS:
        decision, replacement = DECISIONS[name]
        return EdgeDecision(name, decision, replacement)
    for prefix, decision, replacement in PREFIX_DECISIONS:
        if name.startswith(prefix):
            return EdgeDecision(name, decision, replacement)
    return None


def replacement_for(name: str) -> str | None:
    row = decision_for(name)
    return row.replacement if row else None


def decision_for_unlisted(name: str, *, unused: bool) -> EdgeDecision:
    """A function found in an operator's tree that the table does not name.

    PHASE 2 deletes "all audit/health/smoke/unused functions"; anything else still does something nobody has
    placed in the control plane, so it is MIGRATE to MISSING, for a person to decide."""
    if unused:
        return EdgeDecision(name, Decision.DELETE, "nothing: no client, cron or function invokes it", known=False)
    if any(marker in name for marker in DELETE_NAME_MARKERS):
        return EdgeDecision(name, Decision.DELETE, "GET /api/system/status and GET /api/health", known=False)
    return EdgeDecision(name, Decision.MIGRATE, MISSING, known=False)
