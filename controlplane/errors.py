"""The one error shape of the API and the one enum of its error codes.

Every non-2xx answer is ``{"error_code", "message", "suggested_fix", "trace_id"}`` plus ``details`` for field
errors. Services raise :class:`ControlPlaneError`; the DRF exception handler and the Django 404/500 handlers
below turn everything into that shape.
"""

from __future__ import annotations

import enum
import logging
import sys
from typing import Any

import psycopg
from django.db import InterfaceError, OperationalError, connections
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from controlplane.limits import MAX_URL_LENGTH
from controlplane.trace import current_trace_id

logger = logging.getLogger(__name__)


class ErrorCode(enum.StrEnum):
    """Error codes, each with its HTTP status, default message and suggested fix."""

    def __new__(cls, value: str, http_status: int, message: str, suggested_fix: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.http_status = http_status
        member.default_message = message
        member.suggested_fix = suggested_fix
        return member

    VALIDATION_ERROR = (
        "VALIDATION_ERROR",
        400,
        "The request is invalid.",
        "Correct the fields listed in details and retry.",
    )
    MALFORMED_REQUEST = ("MALFORMED_REQUEST", 400, "The request body could not be parsed.", "Send a valid JSON body.")
    NOT_AUTHENTICATED = (
        "NOT_AUTHENTICATED",
        401,
        "Authentication credentials were not provided.",
        "Log in, or send 'Authorization: Token <token>'.",
    )
    AUTHENTICATION_FAILED = (
        "AUTHENTICATION_FAILED",
        401,
        "The credentials are not valid.",
        "Check the token (python manage.py bootstrap_tenant prints it) or log in again.",
    )
    PERMISSION_DENIED = (
        "PERMISSION_DENIED",
        403,
        "You do not have permission to do this.",
        "Ask an owner of the tenant for a role that allows it.",
    )
    NO_TENANT_MEMBERSHIP = (
        "NO_TENANT_MEMBERSHIP",
        403,
        "Your user is not a member of any tenant.",
        "Accept an owner's invitation (GET /api/invitations lists yours), or run python manage.py bootstrap_tenant.",
    )
    NOT_FOUND = ("NOT_FOUND", 404, "Not found.", "Check the URL and the id; lists are under /api/.")
    TENANT_NOT_FOUND = (
        "TENANT_NOT_FOUND",
        404,
        "No tenant of yours matches the X-Tenant header.",
        "Send the slug of a tenant you are a member of.",
    )
    METHOD_NOT_ALLOWED = (
        "METHOD_NOT_ALLOWED",
        405,
        "This method is not allowed here.",
        "Use one of the methods in the Allow header.",
    )
    NOT_ACCEPTABLE = (
        "NOT_ACCEPTABLE",
        406,
        "The requested response format is not available.",
        "Accept application/json.",
    )
    URL_TOO_LONG = (
        "URL_TOO_LONG",
        414,
        f"The request's URL is longer than {MAX_URL_LENGTH} characters.",
        "Send long input in a request body (POST), or narrow the query.",
    )
    UNSUPPORTED_MEDIA_TYPE = (
        "UNSUPPORTED_MEDIA_TYPE",
        415,
        "The request body's media type is not supported.",
        "Send Content-Type: application/json.",
    )
    CONFLICT = ("CONFLICT", 409, "The request conflicts with the current state.", "Reload the resource and retry.")
    ILLEGAL_TRANSITION = (
        "ILLEGAL_TRANSITION",
        409,
        "That state change is not allowed from the current state.",
        "Check the resource's current state; details name the current and requested states.",
    )
    IDEMPOTENCY_KEY_REUSED = (
        "IDEMPOTENCY_KEY_REUSED",
        409,
        "This idempotency key was already used with a different request body.",
        "Use a new idempotency key for a different request.",
    )
    RATE_LIMITED = (
        "RATE_LIMITED",
        429,
        "Too many requests.",
        "Wait for the number of seconds in the Retry-After header.",
    )
    INTERNAL_ERROR = (
        "INTERNAL_ERROR",
        500,
        "An internal error occurred; nothing was changed.",
        "Retry; if it persists, report the trace_id to the operator (it is in the server logs).",
    )
    SERVICE_UNAVAILABLE = (
        "SERVICE_UNAVAILABLE",
        503,
        "A dependency of this request is unavailable.",
        "Check GET /api/system/status for the failing component.",
    )
    # Integrations (issue 3 and later) share this enum so that every program reads one list.
    INTEGRATION_KEY_MISSING = (
        "INTEGRATION_KEY_MISSING",
        409,
        "A key this action needs is not configured.",
        "Enter the missing keys in the console (Connections, or Keys Needed) and verify them.",
    )
    INTEGRATION_AUTH_FAILED = (
        "INTEGRATION_AUTH_FAILED",
        502,
        "The provider refused the configured credentials.",
        "Re-enter the key in admin and run verify.",
    )
    INTEGRATION_UNREACHABLE = (
        "INTEGRATION_UNREACHABLE",
        502,
        "The provider could not be reached.",
        "Check network access to the provider and its status page, then verify again.",
    )
    INTEGRATION_TIMEOUT = (
        "INTEGRATION_TIMEOUT",
        504,
        "The provider did not answer in time.",
        "Retry; if it persists, check the provider's status.",
    )
    INTEGRATION_RATE_LIMITED = (
        "INTEGRATION_RATE_LIMITED",
        429,
        "The provider is rate limiting us.",
        "Wait and retry; reduce request frequency.",
    )
    INTEGRATION_BAD_RESPONSE = (
        "INTEGRATION_BAD_RESPONSE",
        502,
        "The provider answered with something we could not read.",
        "Check the provider's status page and the configured base URL, then verify again.",
    )
    INTEGRATION_UNVERIFIED = (
        "INTEGRATION_UNVERIFIED",
        409,
        "The provider is configured but has not been verified.",
        "Press Verify on the provider's card in the console (Connections), or POST /api/integrations/verify.",
    )
    INTEGRATION_ENVIRONMENT_MISMATCH = (
        "INTEGRATION_ENVIRONMENT_MISMATCH",
        409,
        "The account the provider reports is not the configured environment.",
        "Set the provider's ENVIRONMENT credential to match the account (demo or live), or use other keys.",
    )
    INTEGRATION_KEY_TOO_POWERFUL = (
        "INTEGRATION_KEY_TOO_POWERFUL",
        409,
        "The venue key can withdraw or transfer funds; a trading key must not.",
        "Create a key with view and trade permissions only (no withdraw, no transfer) at the venue, enter it in "
        "the console (Connections) and verify again; the message names the venue's own setting.",
    )
    INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED = (
        "INTEGRATION_KEY_PERMISSIONS_UNCONFIRMED",
        409,
        "The venue cannot report what this key may do, and no owner has confirmed it is trade-only.",
        "Check at the venue that the key cannot withdraw or transfer funds, then an owner confirms it: "
        "POST /api/integrations/confirm-permissions with the provider, or the admin action on its verification.",
    )
    ORDER_REJECTED = (
        "ORDER_REJECTED",
        422,
        "The venue rejected the order.",
        "Read the venue's reason in the message; fix the order or the account (margin, permissions, session).",
    )
    INSTRUMENT_NOT_MAPPED = (
        "INSTRUMENT_NOT_MAPPED",
        409,
        "The instrument has no market mapped at this venue; nothing was sent.",
        "Map it from the venue's market list: python manage.py map_venue_symbols --tenant <slug> --venue <venue> "
        "--instrument <symbol> (details name both).",
    )
    # Bot lifecycle (bots app).
    PROMOTION_GATE_FAILED = (
        "PROMOTION_GATE_FAILED",
        409,
        "The bot does not pass the gates of the requested stage.",
        "Fix each failing gate listed in details.gates (each has its own fix), then promote again.",
    )
    BOT_KILLED = (
        "BOT_KILLED",
        409,
        "The bot is killed.",
        "An owner unkills it (POST /api/bots/{id}/unkill with a reason) after reconciling its positions.",
    )
    TENANT_KILLED = (
        "TENANT_KILLED",
        409,
        "The tenant's kill switch is on.",
        "An owner unkills the tenant (POST /api/tenant/unkill with a reason).",
    )
    SYSTEM_KILLED = (
        "SYSTEM_KILLED",
        409,
        "The platform-wide kill switch is on.",
        "A superuser unkills the platform (POST /api/system/unkill with a reason).",
    )
    BOT_RETIRED = ("BOT_RETIRED", 409, "The bot is retired.", "Create a new bot; a retired bot cannot run or change.")
    RECONCILE_MISMATCH = (
        "RECONCILE_MISMATCH",
        409,
        "The bot's positions differ from its venue's; new orders are blocked.",
        "Resolve the difference at the venue, then POST /api/bots/{id}/reconcile until it matches.",
    )
    UNMANAGED_LIVE_POSITION = (
        "UNMANAGED_LIVE_POSITION",
        409,
        "The bot left LIVE while its venue still held a position or working orders.",
        "Resolve it at POST /api/bots/{id}/reconcile/resolve with flatten (close it at the venue) or accept_venue "
        "(keep it on the live book), after reconciling the bot.",
    )
    AUTONOMY_NOT_ALLOWED = (
        "AUTONOMY_NOT_ALLOWED",
        409,
        "The system is not OK: no live order may open or grow a position.",
        "Fix the system status blockers listed in the values (GET /api/system/status); orders that reduce "
        "exposure still pass.",
    )
    RECONCILE_SOURCE_MISSING = (
        "RECONCILE_SOURCE_MISSING",
        409,
        "This bot's venue has no position source (no adapter is installed for it); nothing was compared.",
        "Give the bot a venue whose adapter is installed (a sim venue or a registered live venue), then reconcile "
        "again.",
    )
    UNKILL_NEEDS_RECONCILE = (
        "UNKILL_NEEDS_RECONCILE",
        409,
        "Unkilling needs a flat reconciliation since the kill, or a positions decision.",
        "Reconcile the bot until it is flat, or send positions_decision (keep_positions or flattened_at_venue).",
    )
    RUNNER_ALREADY_ACTIVE = (
        "RUNNER_ALREADY_ACTIVE",
        409,
        "The bot already has an active runner.",
        "Stop or restart the active runner listed in details instead of starting another.",
    )
    JOB_HANDLER_MISSING = (
        "JOB_HANDLER_MISSING",
        409,
        "No handler is installed for this kind of job.",
        "Install the app that runs this kind of job; details name the kind.",
    )
    JOB_LEASE_EXPIRED = (
        "JOB_LEASE_EXPIRED",
        409,
        "The job's worker stopped reporting before its lease expired.",
        "Retry the job (POST /api/jobs/{id}/retry) and check the workers of its queue.",
    )
    JOB_NEVER_STARTED = (
        "JOB_NEVER_STARTED",
        409,
        "The job was sent to its queue and no worker started it within the bound.",
        "Check that a worker consumes the job's queue, then retry the job (POST /api/jobs/{id}/retry).",
    )
    # Backtests (backtests app).
    BACKTEST_DATA_GAPS = (
        "BACKTEST_DATA_GAPS",
        409,
        "The range has missing bars; the backtest was refused (details list the gaps).",
        'Import or fetch the missing bars, shorten the range, or run with gap_policy "report".',
    )
    BACKTEST_NO_DATA = (
        "BACKTEST_NO_DATA",
        409,
        "No stored bars cover the range for an instrument.",
        "Import bars for the instruments and timeframe (manage.py import_bars) or pick a range with bars.",
    )
    STEP_UP_REQUIRED = (
        "STEP_UP_REQUIRED",
        403,
        "This action needs a second factor verified in the last few minutes.",
        "Send a current authenticator (TOTP) or backup code in the X-OTP-Token header; or POST "
        "/api/auth/2fa/send, then POST /api/auth/2fa/verify with the SMS code, and retry; in the console, enter the "
        "code in the action's confirmation. No device yet: enrol one in the console (Two-factor authentication).",
    )
    EDGE_CALL_BLOCKED = (
        "EDGE_CALL_BLOCKED",
        410,
        "Legacy edge functions are retired; this control plane is the only entry point.",
        "Call the REST endpoint under /api/ listed in the README instead.",
    )


class ControlPlaneError(Exception):
    """A failure with a code from :class:`ErrorCode`; services raise it, the API renders it."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        suggested_fix: str | None = None,
        details: Any = None,
        http_status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.code = code
        self.retry_after = retry_after  # seconds, sent as Retry-After (a RATE_LIMITED raised by a service)
        self.message = message or code.default_message
        self.suggested_fix = suggested_fix or code.suggested_fix
        self.details = details
        self.http_status = http_status or code.http_status
        super().__init__(f"{code}: {self.message}")


def error_body(
    code: ErrorCode, message: str | None = None, *, suggested_fix: str | None = None, details: Any = None
) -> dict[str, Any]:
    body = {
        "error_code": str(code),
        "message": message or code.default_message,
        "suggested_fix": suggested_fix or code.suggested_fix,
        "trace_id": current_trace_id(),
    }
    if details is not None:
        body["details"] = details
    return body


def _rollback_open_transactions() -> None:
    """An error answer means nothing happened: undo whatever the request's transaction holds."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            connection.set_rollback(True)


_DRF_CODES: list[tuple[type[Exception], ErrorCode]] = [
    (drf_exceptions.ParseError, ErrorCode.MALFORMED_REQUEST),
    (drf_exceptions.ValidationError, ErrorCode.VALIDATION_ERROR),
    (drf_exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (drf_exceptions.AuthenticationFailed, ErrorCode.AUTHENTICATION_FAILED),
    (drf_exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (drf_exceptions.NotFound, ErrorCode.NOT_FOUND),
    (drf_exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (drf_exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (drf_exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (drf_exceptions.Throttled, ErrorCode.RATE_LIMITED),
]


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes the one error shape, and the transaction rolls back."""
    _rollback_open_transactions()
    headers: dict[str, str] = {}

    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        return database_unavailable_response(context["request"], exc)
    if isinstance(exc, ControlPlaneError):
        if exc.retry_after:
            headers["Retry-After"] = str(int(exc.retry_after))
        return Response(
            error_body(exc.code, exc.message, suggested_fix=exc.suggested_fix, details=exc.details),
            status=exc.http_status,
            headers=headers,
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    if isinstance(exc, drf_exceptions.APIException):
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), None)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, drf_exceptions.ValidationError):
            return Response(error_body(ErrorCode.VALIDATION_ERROR, details=exc.detail), status=400, headers=headers)
        if code is None:
            code = ErrorCode.CONFLICT if exc.status_code == 409 else ErrorCode.VALIDATION_ERROR
        message = str(exc.detail) if isinstance(exc.detail, str) else code.default_message
        return Response(error_body(code, message), status=exc.status_code, headers=headers)

    logger.exception("unhandled error in API view", extra={"view": type(context.get("view")).__name__})
    return Response(error_body(ErrorCode.INTERNAL_ERROR), status=500)


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


# What a lost, refused or restarting database raises, wrapped by Django or straight from the driver (the tenant
# context is written on the driver's connection at BEGIN, controlplane/tenancy.py).
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
DATABASE_UNAVAILABLE_MESSAGE = "The database is unreachable or did not answer; nothing was changed."
DATABASE_UNAVAILABLE_FIX = "Retry shortly; if it persists, check DATABASE_URL and that Postgres is running."


DATABASE_LOST_AT_COMMIT_MESSAGE = "The database connection was lost while saving; the change may or may not be kept."
DATABASE_LOST_AT_COMMIT_FIX = (
    "Read the resource back before retrying (an intent retried with its idempotency key is safe)."
)


def database_unavailable_response(request, exc: BaseException, *, outcome_unknown: bool = False) -> HttpResponse:
    """The one answer for a request the database could not serve: 503 ``SERVICE_UNAVAILABLE`` naming the database,
    never a 500, since the request was fine and a retry once Postgres is back will work. ``outcome_unknown``: the
    connection died at COMMIT, so "nothing was changed" would be a guess and the answer says so instead. The
    response is marked ``database_unavailable`` so that TenantTransactionMiddleware can tell it from any other 503
    and retry a read."""
    _rollback_open_transactions()
    # One line, no traceback: during an outage every request lands here, and the cause is the same each time.
    logger.warning("database unavailable: %s: %s", exc.__class__.__name__, exc, extra={"path": request.path})
    message, fix = (
        (DATABASE_LOST_AT_COMMIT_MESSAGE, DATABASE_LOST_AT_COMMIT_FIX)
        if outcome_unknown
        else (DATABASE_UNAVAILABLE_MESSAGE, DATABASE_UNAVAILABLE_FIX)
    )
    if _wants_json(request):
        response = json_error_response(
            ErrorCode.SERVICE_UNAVAILABLE, message=message, suggested_fix=fix, details={"component": "database"}
        )
    else:
        response = HttpResponse(f"{message} {fix}", status=503, content_type="text/plain")
    response.database_unavailable = True
    return response


def json_error_response(code: ErrorCode, status: int | None = None, **kwargs) -> JsonResponse:
    return JsonResponse(error_body(code, **kwargs), status=status or code.http_status)


class URLLengthMiddleware:
    """Refuses a URL longer than ``MAX_URL_LENGTH`` before any other work (session, authentication, database), in
    the error shape on the API; gunicorn's own limit sits above it (``controlplane/limits.py``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if len(request.get_full_path()) <= MAX_URL_LENGTH:
            return self.get_response(request)
        if _wants_json(request):
            return json_error_response(ErrorCode.URL_TOO_LONG)
        return HttpResponse(ErrorCode.URL_TOO_LONG.default_message, status=414, content_type="text/plain")


def handler404(request, exception=None):
    if _wants_json(request):
        return json_error_response(ErrorCode.NOT_FOUND, message=f"No API endpoint or resource at {request.path}.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    """Django calls this inside its ``except`` for an exception no view handled, so ``sys.exc_info()`` is it."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        return database_unavailable_response(request, exc)
    _rollback_open_transactions()
    if _wants_json(request):
        return json_error_response(ErrorCode.INTERNAL_ERROR)
    from django.views.defaults import server_error

    return server_error(request)


def handler403(request, exception=None):
    if _wants_json(request):
        return json_error_response(ErrorCode.PERMISSION_DENIED)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def handler400(request, exception=None):
    if _wants_json(request):
        return json_error_response(ErrorCode.MALFORMED_REQUEST)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
