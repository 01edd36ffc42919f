"""Schemathesis over the whole OpenAPI schema, in process, as the owner of a seeded tenant (issue 12, "Make it
permanent"): no 5xx, every error in the one error shape, every answer as the schema says.

Bounded and not flaky: hypothesis is derandomized (the cases are a function of the schema and the pinned
hypothesis), with no example database and no shrinking (a failure is recorded, not minimised), and each operation
gets ``MAX_EXAMPLES`` valid and ``MAX_EXAMPLES`` invalid cases (and as many again on each seeded row for the
operations on a bot, runner, job or intent). Nothing is excluded: providers are pointed at a closed local port,
so a verify (or anything else that calls out) fails fast with INTEGRATION_UNREACHABLE instead of reaching the
internet, and work a request queues is never published (the test's transaction never commits). The only thing
not sent is an invalid case for an operation with no parameter and no body (or only the pinned id): there is
none to generate. The whole run is one test, so its counts (operations, cases, failures) print once.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from integrations.registry import provider_names
from tests.conftest import client_for, token_for
from tests.factories import InstrumentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

MAX_EXAMPLES = 20  # per operation and pass: about 3,600 cases in about two minutes on 2 cores
CLOSED_PORT = "http://127.0.0.1:1"
ERROR_KEYS = {"error_code", "message", "suggested_fix", "trace_id"}
# The answers' own checks. Not negative_data_rejection: DRF is lenient by design (a number where a string is
# expected is read as its text, an empty filter is no filter) and that check calls every such 2xx a failure.
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _error_shape_problem(response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"a {response.status_code} that is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or not ERROR_KEYS <= set(body) or set(body) - ERROR_KEYS - {"details"}:
        return f"a {response.status_code} not in the error shape: {str(body)[:200]}"
    return None


@pytest.fixture
def seeded_owner(owner_a, settings):
    """An owner of a tenant with an instrument, a bot, its runner, a job and an intent, so the cases reach real
    handlers, not only 404s. Returns the owner's Token header and, per collection, the ids of its seeded rows."""
    settings.INTEGRATION_BASE_URLS = {name: CLOSED_PORT for name in provider_names()}
    InstrumentFactory(symbol="ES")
    api = client_for(owner_a)

    def created(path, body, **headers) -> int:
        answer = api.post(path, body, format="json", **headers)
        assert answer.status_code == 201, (path, answer.content)
        return answer.json()["id"]

    bot = created("/api/bots", {"name": "fuzzed", "strategy": "ma_crossover", "instruments": ["ES"]})
    # A bot on a live venue: its reconcile asks the venue (the closed port) while the request waits.
    live_bot = created(
        "/api/bots", {"name": "fuzzed-live", "strategy": "ma_crossover", "instruments": ["ES"], "venue": "kraken"}
    )
    ids = {
        "/api/bots/": [bot, live_bot],
        "/api/runners/": [created("/api/runners/start", {"bot_id": bot})],
        "/api/jobs/": [created("/api/jobs", {"kind": "RECONCILE", "bot_id": bot})],
        "/api/intents/": [
            created(
                "/api/intents",
                {"bot": bot, "legs": [{"venue": "sim", "symbol": "ES", "side": "buy", "quantity": "1"}]},
                HTTP_IDEMPOTENCY_KEY="fuzz-1",
            )
        ],
    }
    return {"Authorization": f"Token {token_for(owner_a)}"}, ids


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler in this thread, on the test's transaction: as Django's test client does, requests do
    not close the connection when they end (that would end the transaction the test rolls back)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _passes(operation, seeded_ids: dict[str, list[int]]):
    """Valid and invalid cases with generated ids, and for the operations on a seeded row valid and invalid cases
    on that row too (a generated id almost never names it, and its handlers are where the answers differ)."""
    yield "positive", operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    yield "negative", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    for prefix, row_ids in seeded_ids.items():
        for row_id in row_ids if operation.path.startswith(prefix + "{") else ():
            pinned = dict.fromkeys((p.name for p in operation.path_parameters), row_id)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                yield (
                    f"{prefix}{row_id} {mode.value}",
                    operation.as_strategy(generation_mode=mode, path_parameters=pinned),
                )


def test_the_whole_schema_holds_under_schemathesis(seeded_owner, wsgi_app):
    seeded_owner, seeded_ids = seeded_owner
    started = time.monotonic()
    schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", wsgi_app, headers=seeded_owner)
    operations, cases, statuses, failures, nothing_invalid = 0, 0, Counter(), [], []

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, strategy in _passes(operation, seeded_ids):

            @hypothesis_settings(
                max_examples=MAX_EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case):
                nonlocal cases
                cases += 1
                response = case.call(headers=seeded_owner)
                statuses[response.status_code // 100] += 1
                problems = []
                if response.status_code >= 500:
                    problems.append(f"a server error {response.status_code}: {response.text[:200]!r}")
                shape = _error_shape_problem(response)
                if shape:
                    problems.append(shape)
                try:
                    case.validate_response(response, checks=CHECKS, headers=seeded_owner)
                except FailureGroup as group:  # every failed check, each with its title and message
                    problems.extend(f"{f.title}: {f.message}"[:400] for f in group.exceptions)
                for problem in problems:
                    failures.append(f"{operation.label} [{mode}]: {problem}\n    {case.as_curl_command()}")

            try:
                run()
            except Unsatisfiable:
                # An operation with no parameters and no body (or only its pinned id) has no invalid input.
                assert "negative" in mode, operation.label
                nothing_invalid.append(operation.label)

    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {operations} operations, {cases} cases, {len(failures)} failures in {elapsed:.0f} s; "
        f"answers by class: {dict(sorted((f'{k}xx', v) for k, v in statuses.items()))}; "
        f"{len(nothing_invalid)} invalid passes had nothing to generate (no parameter or body beyond a pinned id)"
    )
    assert operations >= 69
    assert not failures, "\n".join(failures[:60])
