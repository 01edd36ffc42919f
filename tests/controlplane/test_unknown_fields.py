"""Unknown fields are refused (issue 14): a body key no field of the endpoint knows answers VALIDATION_ERROR
naming it, on every operation with a body, instead of being dropped (a matrix posted with ``parameters``, whose
field is ``base_parameters``, ran on the defaults)."""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import spectacular_settings
from rest_framework import serializers

from tests.backtests.helpers import START
from tests.assertions import assert_error
from tests.factories import InstrumentFactory

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _request_serializers() -> list[tuple[str, str, serializers.BaseSerializer]]:
    """(method, path, request serializer) of every operation of the schema that takes a body."""
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    found = []
    for path, path_regex, method, view in generator._get_paths_and_endpoints():
        if method not in WRITE_METHODS:
            continue
        view.request = spectacular_settings.GET_MOCK_REQUEST(method, path, view, None)
        view.schema.get_operation(path, path_regex, "^/api", method, generator.registry)
        serializer = view.schema.get_request_serializer()
        if serializer is not None:
            found.append((method, path, serializer))
    return found


def test_every_operation_with_a_body_refuses_a_field_it_does_not_know(db):
    operations = _request_serializers()
    assert len(operations) >= 25  # the schema's bodies were found, not an empty loop
    missed = []
    for method, path, serializer in operations:
        instance = serializer() if isinstance(serializer, type) else serializer.__class__()
        partial = method == "PATCH"
        body = instance.__class__(data={"zz_not_a_field": 1}, partial=partial)
        if body.is_valid() or "zz_not_a_field" not in body.errors:
            missed.append(f"{method} {path} ({instance.__class__.__name__})")
    assert missed == []


def test_a_matrix_with_parameters_instead_of_base_parameters_is_refused(api_operator_a):
    InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    body = {
        "strategy": "ma_crossover",
        "mode": "grid",
        "space": {"fast": [3, 5]},
        "instruments": ["BTC-USD"],
        "timeframe": "1h",
        "start": START.isoformat(),
        "end": "2026-04-01T00:00:00Z",
        "split_at": "2026-03-20T00:00:00Z",
        "parameters": {"slow": 30},
    }
    answer = api_operator_a.post("/api/backtests/matrix", body, format="json")
    assert_error(answer, 400, "VALIDATION_ERROR")
    details = answer.json()["details"]
    assert list(details) == ["parameters"] and "base_parameters" in details["parameters"][0]
    assert api_operator_a.get("/api/backtests/matrix").json()["count"] == 0  # nothing was created


def test_an_unknown_field_is_named_beside_the_other_errors_and_in_nested_bodies(api_operator_a):
    answer = api_operator_a.post(
        "/api/intents",
        {
            "bot": 1,
            "legs": [{"venue": "sim", "symbol": "ES", "side": "buy", "quantity": "1", "colour": "red"}],
            "priority": "high",
        },
        format="json",
    )
    assert_error(answer, 400, "VALIDATION_ERROR")
    details = answer.json()["details"]
    assert "priority" in details and "colour" in details["legs"]["0"], details
    missing = api_operator_a.post("/api/backtests", {"strategi": "ma_crossover"}, format="json")
    assert_error(missing, 400, "VALIDATION_ERROR")
    assert {"strategi", "start", "end"} <= set(missing.json()["details"])


def test_a_bot_patch_with_an_unknown_field_is_refused(api_operator_a):
    InstrumentFactory(symbol="ES")
    bot = api_operator_a.post(
        "/api/bots", {"name": "b", "strategy": "ma_crossover", "instruments": ["ES"]}, format="json"
    ).json()
    answer = api_operator_a.patch(f"/api/bots/{bot['id']}", {"name": "c", "stage": "LIVE"}, format="json")
    assert_error(answer, 400, "VALIDATION_ERROR")
    assert list(answer.json()["details"]) == ["stage"]
    assert api_operator_a.get(f"/api/bots/{bot['id']}").json()["name"] == "b"


def test_the_schema_says_request_bodies_take_no_other_fields():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    for name in ("MatrixCreate", "BacktestCreate", "IntentCreate", "Leg", "BotWrite", "PatchedBotWrite"):
        assert components[name]["additionalProperties"] is False, name
    # A component an answer also uses is left open (an answer may grow a field a client ignores).
    assert "additionalProperties" not in components["TradingState"]
