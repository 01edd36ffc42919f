"""What the OpenAPI schema says about every answer that is not a success, and the fields fresh answers share.

The schema is a contract clients and fuzzers read: an answer it does not declare is a defect in one of the two.
Every non-2xx answer has the one error shape (DESIGN.md invariant 5), so the error statuses are declared here,
once, by :class:`AutoSchema` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) from what the view can answer, and
not endpoint by endpoint, where they would drift. Each status's description lists the error codes that use it,
read from :class:`~controlplane.errors.ErrorCode`, so a new code is documented where its status is.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from controlplane.errors import ErrorCode

# Every answer can be one of these: the Host header or the request is malformed (400), the Accept header names no
# format we write (406), the URL is too long (414, controlplane/limits.py), the code fails (500), or a dependency
# (the database, Redis) is down (503). 405 is not among them: it answers the methods an operation is not, so it
# belongs to no documented operation.
ALWAYS = frozenset({400, 406, 414, 500, 503})
# Authenticated views: no or a bad token (401), a role too low or no membership (403), an X-Tenant that names no
# tenant of the user's (404 TENANT_NOT_FOUND), several tenants and no X-Tenant (400 TENANT_REQUIRED).
AUTHENTICATED = frozenset({401, 403, 404})
# A request with a body: it may not parse or validate (400), may not be JSON (415), and may conflict with the
# state it changes (409: illegal transitions, kill switches, idempotency keys, missing keys).
WITH_BODY = frozenset({409, 415})
# A change without a body (DELETE, POST with no request body) may still conflict with the current state.
CHANGE = frozenset({409})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A view that calls a provider while the request waits (a reconcile reads the venue's positions) passes on the
# provider's failure: 502 (unreachable, refused, unreadable) or 504 (no answer in time). It says so with
# ``error_statuses = PROVIDER_CALL``.
PROVIDER_CALL = (502, 504)
# The levels of controlplane.status (named once in the schema: SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
STATUS_LEVELS = ["OK", "DEGRADED", "BLOCKED", "UNKNOWN"]


class ErrorSerializer(serializers.Serializer):
    """The one error shape (``controlplane.errors.error_body``)."""

    error_code = serializers.ChoiceField(choices=[code.value for code in ErrorCode])
    message = serializers.CharField()
    suggested_fix = serializers.CharField()
    trace_id = serializers.CharField()
    details = serializers.JSONField(required=False, help_text="Field errors, or what the code needs explained.")


class FreshnessSerializer(serializers.Serializer):
    """``controlplane.status.freshness()``: when the numbers of an answer were measured and whether the system was
    degraded then (DESIGN.md invariant 11). Answers that carry it inherit from this serializer."""

    as_of = serializers.DateTimeField(help_text="When the answer's numbers were measured.")
    system_status = serializers.ChoiceField(choices=STATUS_LEVELS)
    degraded = serializers.BooleanField(help_text="True while the system status is not OK.")
    status_trace_id = serializers.CharField(allow_null=True, help_text="The status's trace id while degraded.")


def error_codes_for(status: int) -> list[str]:
    return [code.value for code in ErrorCode if code.http_status == status]


def error_response(status: int) -> OpenApiResponse:
    return OpenApiResponse(
        ErrorSerializer, description="Error shape; error_code one of: " + ", ".join(error_codes_for(status)) + "."
    )


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, plus the error answers each operation can give, in the one error shape.

    A view adds statuses only it can answer with ``error_statuses`` (e.g. 502 from a provider call)."""

    def error_statuses(self) -> set[int]:
        statuses = set(ALWAYS)
        if self.view.authentication_classes:
            statuses |= AUTHENTICATED
        if self.view.throttle_classes:
            statuses.add(429)
        if self.path_regex and "(?P<" in self.path_regex:
            statuses.add(404)
        if self.method not in SAFE_METHODS:
            statuses |= WITH_BODY if self.get_request_serializer() is not None else CHANGE
        statuses |= set(getattr(self.view, "error_statuses", ()))
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in sorted(self.error_statuses()):
            responses.setdefault(str(status), self._get_response_for_code(error_response(status), str(status)))
        return responses


class DigestTokenScheme(OpenApiAuthenticationExtension):
    """Our knox-based token authentication, documented as the DRF token scheme it replaced (same name, header)."""

    target_class = "controlplane.authentication.DigestTokenAuthentication"
    name = "tokenAuth"
    match_subclasses = True

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")


def _refs(value, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for item in value.values():
            _refs(item, found)
    elif isinstance(value, list):
        for item in value:
            _refs(item, found)
    return found


def refuse_additional_request_properties(result, generator, request, public):
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]: a request body's object schema says
    ``additionalProperties: false``, because every body serializer refuses a field it does not know
    (``controlplane.serializers.RefuseUnknownFields``). Only components no answer uses (directly or nested) are
    marked, so an answer never breaks the schema by carrying a field a client may ignore."""
    components = result.get("components", {}).get("schemas", {})
    answered: set[str] = set()
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                _refs(operation.get("responses", {}), answered)
    pending = list(answered)
    while pending:  # what the answers' components use, transitively
        for name in _refs(components.get(pending.pop(), {}), set()) - answered:
            answered.add(name)
            pending.append(name)
    requested: set[str] = set()
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                _refs(operation.get("requestBody", {}), requested)
    pending = list(requested)
    while pending:
        for name in _refs(components.get(pending.pop(), {}), set()) - requested:
            requested.add(name)
            pending.append(name)
    for name in requested - answered:
        component = components.get(name, {})
        if component.get("type") == "object" and "additionalProperties" not in component:
            component["additionalProperties"] = False
    return result
