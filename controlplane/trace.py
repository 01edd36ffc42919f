"""Trace ids: one per request and per task, carried from request to task to task and bound into every log line."""

from __future__ import annotations

import contextvars
import re
import uuid

import structlog

TRACE_HEADER = "X-Trace-Id"
TRACE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$")

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)


def new_trace_id() -> str:
    return uuid.uuid4().hex


def is_well_formed(value: str | None) -> bool:
    return bool(value) and bool(TRACE_ID_RE.match(value))


def bound_trace_id() -> str | None:
    """The trace id of the request or task running now, or None outside any (beat, a shell): unlike
    ``current_trace_id`` it never binds one."""
    return _trace_id.get()


def current_trace_id() -> str:
    """The bound trace id; code running outside any request or task gets a fresh one bound on first use."""
    value = _trace_id.get()
    if value is None:
        value = bind_trace_id(new_trace_id())
    return value


def bind_trace_id(value: str) -> str:
    _trace_id.set(value)
    structlog.contextvars.bind_contextvars(trace_id=value)
    return value


def clear_trace_id() -> None:
    _trace_id.set(None)
    structlog.contextvars.unbind_contextvars("trace_id")


class TraceIdMiddleware:
    """Keeps a well-formed incoming X-Trace-Id, replaces anything else, and returns it on the response.

    The id stays bound until ``request_finished`` (see ``clear_trace_id_after_request``), so the lines Django
    logs after the middleware chain ("Not Found: ...") carry it too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(TRACE_HEADER)
        request.trace_id = bind_trace_id(incoming if is_well_formed(incoming) else new_trace_id())
        response = self.get_response(request)
        response[TRACE_HEADER] = request.trace_id
        return response


def clear_trace_id_after_request(sender, **kwargs):
    clear_trace_id()
