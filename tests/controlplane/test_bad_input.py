"""Bad input is a 400 in the error shape naming what is wrong, never a 500: the fuzzer's reproductions of issue 12."""

from pathlib import Path
from urllib.parse import urlencode

import pytest
from django import forms
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin

from controlplane.filters import BoundedIsoDateTimeField, FilterBackend, FilterSet
from tests.assertions import assert_error

pytestmark = pytest.mark.django_db

TEN_LISTS = {
    "/api/tenant/members",
    "/api/audit-events",
    "/api/intents",
    "/api/risk/incidents",
    "/api/bots",
    "/api/runners",
    "/api/jobs",
    "/api/backtests",
    "/api/backtests/matrix",
    "/api/lab/experiments",
}


def _list_endpoints(patterns=None, prefix="/") -> set[str]:
    """Every URL without parameters whose view lists a page of rows (DRF's ListModelMixin, so paginated)."""
    found = set()
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            found |= _list_endpoints(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern) and "<" not in route:
            view = getattr(entry.callback, "view_class", None)
            if view and issubclass(view, GenericAPIView) and issubclass(view, ListModelMixin):
                found.add(prefix + route)
    return found


def test_the_walk_finds_the_ten_list_endpoints():
    assert TEN_LISTS <= _list_endpoints()


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=9223372036854775808", "limit"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("offset=9223372036854775808", "offset"),
        ("offset=1.5", "offset"),
    ],
)
def test_every_list_endpoint_refuses_an_out_of_range_or_non_integer_page(api_owner_a, query, field):
    for url in sorted(_list_endpoints()):
        body = assert_error(api_owner_a.get(f"{url}?{query}"), 400, "VALIDATION_ERROR")
        assert set(body["details"]) == {field}, (url, body)


def test_both_bad_page_parameters_are_named(api_owner_a):
    body = assert_error(api_owner_a.get("/api/bots?limit=9223372036854775808&offset=-1"), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"limit", "offset"}


def test_a_page_in_bounds_still_pages(api_owner_a):
    for name in ("a", "b", "c"):
        assert (
            api_owner_a.post(
                "/api/bots", {"name": name, "strategy": "ma_crossover", "instruments": ["ES"]}, format="json"
            ).status_code
            == 201
        )
    page = api_owner_a.get("/api/bots?limit=2&offset=1").json()
    assert (page["count"], len(page["results"])) == (3, 2)
    assert len(api_owner_a.get("/api/bots?limit=500&offset=2147483647").json()["results"]) == 0


DATETIME_FILTERS = [
    ("/api/intents", "created_after"),
    ("/api/intents", "created_before"),
    ("/api/audit-events", "created_after"),
    ("/api/audit-events", "created_before"),
]
BAD_DATETIMES = [
    "2026-12-01T00:00:00%2B16:00",
    "2026-12-01T00:00:00-16:00",
    "10000-01-01T00:00:00Z",
    "10000-01-01",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00%2B05:00",
]


@pytest.mark.parametrize("value", BAD_DATETIMES)
@pytest.mark.parametrize("url, name", DATETIME_FILTERS)
def test_a_datetime_filter_postgres_cannot_hold_is_a_400_naming_it(api_owner_a, url, name, value):
    body = assert_error(api_owner_a.get(f"{url}?{name}={value}"), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {name}, body


@pytest.mark.parametrize("url, name", DATETIME_FILTERS)
def test_a_datetime_filter_with_any_offset_postgres_holds_still_filters(api_owner_a, url, name):
    assert api_owner_a.get(f"{url}?{name}=2026-12-01T00:00:00%2B15:59").status_code == 200
    assert api_owner_a.get(f"{url}?{name}=2026-12-01T00:00:00-15:00").status_code == 200


@pytest.mark.parametrize("value", BAD_DATETIMES[2:])
def test_the_datetime_query_parameters_of_serializers_are_a_400_too(api_owner_a, value):
    """DRF's DateTimeField converts to UTC itself (an offset of 16 hours is accepted there): only what it cannot
    hold is a 400."""
    bot = api_owner_a.post(
        "/api/bots", {"name": "t", "strategy": "ma_crossover", "instruments": ["ES"]}, format="json"
    ).json()["id"]
    body = assert_error(api_owner_a.get(f"/api/bots/{bot}/traces?since={value}"), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"since"}
    body = assert_error(api_owner_a.get(f"/api/market-hours?instrument=ES&at={value}"), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"at"}


def _views(patterns=None):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry.url_patterns)
        elif getattr(entry.callback, "view_class", None):
            yield entry.callback.view_class


def test_every_filterset_filters_datetimes_with_the_bounded_field():
    backend = FilterBackend()
    filtersets = {
        backend.get_filterset_class(view(), view.queryset if view.queryset is not None else _model(view))
        for view in _views()
        if getattr(view, "filterset_class", None) or getattr(view, "filterset_fields", None)
    }
    assert len(filtersets) >= 7  # bots, runners, jobs, intents, risk incidents, audit events, backtests
    for filterset in filtersets:
        assert issubclass(filterset, FilterSet), filterset
        for name, declared in filterset.base_filters.items():
            if issubclass(declared.field_class, forms.DateTimeField):
                assert issubclass(declared.field_class, BoundedIsoDateTimeField), (filterset, name)


def _model(view):
    """A queryset of the view's model without running its get_queryset (which needs a request and a tenant)."""
    serializer = view.serializer_class
    return serializer.Meta.model.objects.none()


def _bot(api) -> int:
    response = api.post("/api/bots", {"name": "nul", "strategy": "ma_crossover", "instruments": ["ES"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _post_raw(api, url: str, body: str):
    """A body written by hand: a lone surrogate cannot be encoded to UTF-8, only sent as its JSON escape."""
    return api.post(url, data=body, content_type="application/json")


@pytest.mark.parametrize("kind", ["BACKTEST", "RECONCILE"])
@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "x\\udfffy", "ok\\u0000"])
def test_a_job_whose_params_hold_nul_or_a_lone_surrogate_is_a_400_naming_the_path(api_operator_a, kind, escape):
    from bots.models import Job

    bot = _bot(api_operator_a)
    before = Job.objects.count()
    response = _post_raw(
        api_operator_a, "/api/jobs", f'{{"kind": "{kind}", "bot_id": {bot}, "params": {{"x": "{escape}"}}}}'
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"params.x"}, body
    assert Job.objects.count() == before


def test_nested_strings_keys_and_top_level_fields_are_checked_and_all_named(api_operator_a):
    response = _post_raw(
        api_operator_a,
        "/api/bots",
        '{"name": "\\ud800", "strategy": "ma_crossover", '
        '"instruments": ["ES", "N\\u0000Q"], "parameters": {"a": [{"b": "\\udc00"}], "\\u0000": 1}}',
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"name", "instruments.1", "parameters.a.0.b", "parameters.\\u0000"}, body


def test_a_surrogate_pair_and_other_unicode_are_text_like_any(api_operator_a):
    bot = _bot(api_operator_a)
    response = _post_raw(
        api_operator_a,
        "/api/jobs",
        f'{{"kind": "RECONCILE", "bot_id": {bot}, "params": {{"note": "\\ud83d\\ude00 caf\\u00e9 \\u2028"}}}}',
    )
    assert response.status_code == 201, response.content
    assert response.json()["params"] == {"note": "\U0001f600 café \u2028"}


@pytest.mark.parametrize("format", ["multipart", None])
def test_a_form_body_refuses_nul_too(api_operator_a, format):
    """DRF reads ``params.x`` of a form as ``{"params": {"x": ...}}``: the same check applies to form bodies."""
    bot = _bot(api_operator_a)
    data = {"kind": "RECONCILE", "bot_id": bot, "params.x": "a\x00"}
    response = (
        api_operator_a.post("/api/jobs", data, format=format)
        if format
        else api_operator_a.post("/api/jobs", urlencode(data), content_type="application/x-www-form-urlencoded")
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"params.x"}, body


def test_an_over_long_url_is_a_414_in_the_error_shape_before_authentication():
    from rest_framework.test import APIClient

    from controlplane.limits import MAX_URL_LENGTH

    client = APIClient()
    long_query = "/api/bots?q=" + "x" * MAX_URL_LENGTH
    assert_error(client.get(long_query), 414, "URL_TOO_LONG")  # not 401: refused before any other work
    assert_error(client.post("/api/" + "a" * MAX_URL_LENGTH, {}), 414, "URL_TOO_LONG")
    response = client.get("/admin/?q=" + "x" * MAX_URL_LENGTH)
    assert (response.status_code, response["Content-Type"]) == (414, "text/plain")


def test_a_url_of_the_limit_is_served(api_viewer_a):
    from controlplane.limits import MAX_URL_LENGTH

    url = "/api/bots?q="
    response = api_viewer_a.get(url + "x" * (MAX_URL_LENGTH - len(url)))
    assert response.status_code == 200, response.content


def test_gunicorn_reads_request_lines_longer_than_the_url_django_refuses():
    from controlplane.devstack import portal_commands
    from controlplane.limits import GUNICORN_LIMIT_REQUEST_LINE, MAX_URL_LENGTH

    web = portal_commands({"PORT": "8123"})["web"]
    assert web[web.index("--limit-request-line") + 1] == str(GUNICORN_LIMIT_REQUEST_LINE) == "8190"
    assert len(f"OPTIONS {'/' * MAX_URL_LENGTH} HTTP/1.1") <= GUNICORN_LIMIT_REQUEST_LINE
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert all(
        f"--limit-request-line {GUNICORN_LIMIT_REQUEST_LINE}" in line
        for line in readme.splitlines()
        if line.startswith("gunicorn ")
    )


@pytest.mark.slow
def test_gunicorn_as_devstack_runs_it_lets_django_answer_an_over_long_url(tmp_path):
    import http.client
    import json
    import socket

    from controlplane.devstack import portal_commands
    from controlplane.limits import MAX_URL_LENGTH
    from tests.processes import env_for_test_database, start, stop, wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**env_for_test_database(), "PORT": str(port), "WEB_CONCURRENCY": "1"}
    web = start(portal_commands(env)["web"], env, tmp_path / "web.log")

    def answer():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/api/bots?q=" + "x" * (MAX_URL_LENGTH + 100))  # past gunicorn's default
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type"), response.read()
        except ConnectionRefusedError:
            return None
        finally:
            connection.close()

    try:
        status, content_type, body = wait_for(answer, timeout=60, what="gunicorn to answer")
    finally:
        stop(web)
    assert (status, content_type) == (414, "application/json"), (tmp_path / "web.log").read_text()[-3000:]
    assert json.loads(body)["error_code"] == "URL_TOO_LONG"
