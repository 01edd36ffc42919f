"""The OpenAPI schema tells the truth (issue 12, item 10): answers are the shape the schema says, every error
status an operation can answer is declared in the one error shape, and fresh answers document their freshness."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from controlplane.errors import ErrorCode
from controlplane.openapi import FreshnessSerializer
from tests.assertions import assert_error
from tests.factories import InstrumentFactory

ERROR_REF = "#/components/schemas/Error"
# drf-spectacular's enum-naming notes predate item 10 (fields named kind, mode, purpose, status, resolution);
# anything else it says about the schema is a defect.
KNOWN_WARNINGS = ("enum naming encountered", "encountered multiple names for the same choice set")


@pytest.fixture(scope="module")
def generated():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    warnings, errors = dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    return schema, warnings, errors


def _schema(generated):
    return generated[0]


def _component(schema, ref_or_schema) -> dict:
    ref = ref_or_schema.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else ref_or_schema


def _answer(schema, path, method="get", status="200") -> dict:
    content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return _component(schema, content)


def test_the_schema_generates_without_errors_and_validates(generated):
    schema, warnings, errors = generated
    assert errors == {}, errors
    assert [w for w in warnings if not w.removeprefix("Warning: ").startswith(KNOWN_WARNINGS)] == []
    validate_schema(schema)


def test_traces_answer_an_object_with_the_results(generated):
    answer = _answer(_schema(generated), "/api/bots/{id}/traces")
    assert answer["type"] == "object"
    assert answer["properties"]["results"]["type"] == "array"
    assert {"bot_id", "results"} <= set(answer["required"])


def test_usage_answers_an_object_with_the_events_and_their_freshness(generated):
    answer = _answer(_schema(generated), "/api/integrations/usage")
    assert answer["type"] == "object"
    assert answer["properties"]["events"]["type"] == "array"
    assert {"events", "trace_id", *FreshnessSerializer().fields} <= set(answer["required"])


@pytest.mark.parametrize(
    "path, method",
    [
        ("/api/bots/{bot_id}/pnl", "get"),
        ("/api/integrations/status", "get"),
        ("/api/integrations/usage", "get"),
        ("/api/bots/{id}/reconcile", "post"),
        ("/api/bots/{id}/reconcile/resolve", "post"),
    ],
)
def test_answers_that_carry_freshness_document_it(generated, path, method):
    answer = _answer(_schema(generated), path, method)
    assert {"as_of", "system_status", "degraded", "status_trace_id"} <= set(answer["required"])
    assert answer["properties"]["status_trace_id"].get("nullable") is True


def test_the_autonomy_of_an_unscored_bot_has_the_documented_id(generated, api_owner_a):
    answer = _answer(_schema(generated), "/api/bots/{id}/autonomy")
    assert "id" in answer["required"] and answer["properties"]["id"].get("nullable") is True
    InstrumentFactory(symbol="ES")
    bot = api_owner_a.post(
        "/api/bots", {"name": "x", "strategy": "ma_crossover", "instruments": ["ES"]}, format="json"
    ).json()
    body = api_owner_a.get(f"/api/bots/{bot['id']}/autonomy").json()
    assert set(body) == set(answer["properties"])
    assert body["id"] is None and body["score"] is None and body["message"]


def test_every_operation_declares_its_errors_in_the_one_error_shape(generated):
    schema = _schema(generated)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error_code", "message", "suggested_fix", "trace_id"}
    codes = _component(schema, error["properties"]["error_code"])["enum"]
    assert set(codes) == {code.value for code in ErrorCode}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            declared = {int(status) for status in responses}
            assert {400, 414, 500, 503} <= declared, (method, path)
            if path != "/api/health":
                assert {401, 403, 404, 429} <= declared, (method, path)
            if method in ("post", "put", "patch") and "requestBody" in operation:
                assert {409, 415} <= declared, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, (path, status)
                    assert "URL_TOO_LONG" in response["description"] or status != "414"


@pytest.mark.parametrize("path", ["/api/bots/{id}/reconcile", "/api/bots/{id}/reconcile/resolve"])
def test_reconciles_declare_the_venues_failures(generated, path):
    """A reconcile reads the venue's positions while the request waits and answers the venue's failure."""
    responses = _schema(generated)["paths"][path]["post"]["responses"]
    assert {"502", "504"} <= set(responses)
    assert "INTEGRATION_UNREACHABLE" in responses["502"]["description"]


def test_an_accept_header_naming_no_format_we_write_is_the_declared_406(api_owner_a):
    """406 is declared on every operation: this is the answer it stands for, in the one error shape."""
    assert_error(api_owner_a.get("/api/bots", HTTP_ACCEPT="application/xml"), 406, "NOT_ACCEPTABLE")


def test_every_method_the_schema_does_not_list_is_a_405_in_the_error_shape(generated, api_owner_a):
    """Why 405 is declared nowhere: it is the answer to exactly the methods the schema does not list for a path.
    (DRF checks permissions first, so to a user a superuser-only path refuses outright it is the declared 403.)"""
    superuser_only = {"/api/system/kill", "/api/system/unkill"}
    for path, operations in _schema(generated)["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in sorted({"get", "post", "put", "patch", "delete"} - set(operations)):
            response = getattr(api_owner_a, method)(url, {}, format="json")
            if path in superuser_only:
                assert_error(response, 403, "PERMISSION_DENIED")
                continue
            assert_error(response, 405, "METHOD_NOT_ALLOWED")
            assert set(response["Allow"].lower().replace(" ", "").split(",")) >= set(operations), (method, path)


def test_pnl_and_reconcile_answers_document_their_book_and_stale_marks(generated):
    schema = _schema(generated)
    pnl = _answer(schema, "/api/bots/{bot_id}/pnl")
    assert {"book", "marked_at", "stale", "stale_marks"} <= set(pnl["required"])
    position = _component(schema, pnl["properties"]["positions"]["items"])
    assert {"book", "mark_bar_ts", "mark_timeframe", "mark_stale"} <= set(position["required"])
    assert position["properties"]["mark_stale"].get("nullable") is True
    (book,) = [p for p in schema["paths"]["/api/bots/{bot_id}/pnl"]["get"]["parameters"] if p["name"] == "book"]
    assert book["in"] == "query" and set(book["schema"]["enum"]) == {"paper", "live"}
    reconcile = _answer(schema, "/api/bots/{id}/reconcile", "post")
    assert "book" in reconcile["properties"]
