"""The retired Supabase edge functions: every call to their old URLs is refused and logged.

The predecessor's split brain came from edge functions and the API server both starting runners and writing
orders. Nothing but this control plane may do either now, so a stray caller gets 410 with the endpoint to use
instead, and the log line ``[EDGE_CALL_BLOCKED]`` (with the trace id) shows who is still calling.
"""

import logging

from django.views.decorators.csrf import csrf_exempt

from controlplane.errors import ErrorCode, json_error_response

logger = logging.getLogger(__name__)

REPLACEMENTS = {
    "promote-bot": "POST /api/bots/{id}/promote",
    "promotion-engine": "POST /api/bots/{id}/promote",
    "demotion-engine": "POST /api/bots/{id}/demote",
    "create-starter-bots": "POST /api/bots/starter-pack",
    "reconcile-bot-execution": "POST /api/bots/{id}/reconcile",
    "system-proof": "GET /api/system/status",
    "kill-engine": "POST /api/bots/{id}/kill, POST /api/tenant/kill or POST /api/system/kill",
    "runner-controller": "POST /api/runners/start and POST /api/runners/{id}/stop",
    "start-runner": "POST /api/runners/start",
    "restart-runner": "POST /api/runners/{id}/restart",
    "runner-heartbeat": "nothing: runners heartbeat inside the control plane",
    "runner-tick": "nothing: ticks run on the control plane's Celery beat",
    "force-tick": "python manage.py tick",
    "job-dispatcher": "POST /api/jobs",
    "job-processor": "GET /api/jobs/{id}",
    "job-worker": "GET /api/jobs/{id}",
    "job-watchdog": "nothing: the watchdog runs on Celery beat",
    "autonomy-watchdog": "nothing: the supervisor runs on Celery beat",
    "sim-execute-order": "POST /api/intents",
    "live-trading": "POST /api/intents",
    "kraken-trading": "POST /api/intents",
    "coinbase-trading": "POST /api/intents",
    "binance-us-trading": "POST /api/intents",
    "hyperliquid": "POST /api/intents",
    "cross-exchange-arbitrage": "POST /api/intents (multi-leg)",
    "funding-arbitrage": "POST /api/intents (multi-leg)",
    "risk-engine": "nothing: the risk engine runs in front of every order",
    "run-backtest": "POST /api/backtests",
    "historical-data": "python manage.py import_bars or the market-data providers",
    "market-hours": "GET /api/market-hours?instrument=...",
    "broker-tradovate": "POST /api/intents",
    "broker-ironbeam": "POST /api/intents",
    "send-2fa-code": "POST /api/auth/2fa/send",
    "verify-2fa-code": "POST /api/auth/2fa/verify",
}


@csrf_exempt
def edge_call_blocked(request, function_name: str, rest: str = ""):
    replacement = REPLACEMENTS.get(function_name)
    if replacement is None and function_name.startswith(("backtest-", "strategy-lab")):
        replacement = "the /api/backtests and lab endpoints"
    logger.warning(
        "[EDGE_CALL_BLOCKED] legacy edge function %s called",
        function_name,
        extra={
            "edge_function": function_name,
            "method": request.method,
            "remote_addr": request.META.get("REMOTE_ADDR"),
        },
    )
    return json_error_response(
        ErrorCode.EDGE_CALL_BLOCKED,
        message=f"The edge function {function_name!r} is retired; this control plane is the only entry point.",
        suggested_fix=f"Call {replacement} instead." if replacement else ErrorCode.EDGE_CALL_BLOCKED.suggested_fix,
    )
