"""The retired Supabase edge functions: every call to their old URLs is refused and logged.

The predecessor's split brain came from edge functions and the API server both starting runners and writing
orders. Nothing but this control plane may do either now, so a stray caller gets 410 with the endpoint to use
instead, and the log line ``[EDGE_CALL_BLOCKED]`` (with the trace id) shows who is still calling.
"""

import logging

from django.views.decorators.csrf import csrf_exempt

from controlplane import edge_functions
from controlplane.errors import ErrorCode, json_error_response

logger = logging.getLogger(__name__)

# The table itself is controlplane.edge_functions (shared with manage.py edge_inventory); kept importable here.
REPLACEMENTS = edge_functions.REPLACEMENTS


@csrf_exempt
def edge_call_blocked(request, function_name: str, rest: str = ""):
    replacement = edge_functions.replacement_for(function_name)
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
