"""Bad input is a 400 in the error shape naming what is wrong, never a 500: the fuzzer's reproductions of issue 12."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin

from tests.controlplane.test_error_shape import assert_error

pytestmark = pytest.mark.django_db

TEN_LISTS = {"/api/tenant/members", "/api/audit-events", "/api/intents", "/api/risk/incidents", "/api/bots",
             "/api/runners", "/api/jobs", "/api/backtests", "/api/backtests/matrix", "/api/lab/experiments"}


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


@pytest.mark.parametrize("query, field", [
    ("limit=9223372036854775808", "limit"), ("limit=-1", "limit"), ("limit=0", "limit"), ("limit=ten", "limit"),
    ("limit=501", "limit"), ("offset=-1", "offset"), ("offset=9223372036854775808", "offset"),
    ("offset=1.5", "offset"),
])
def test_every_list_endpoint_refuses_an_out_of_range_or_non_integer_page(api_owner_a, query, field):
    for url in sorted(_list_endpoints()):
        body = assert_error(api_owner_a.get(f"{url}?{query}"), 400, "VALIDATION_ERROR")
        assert set(body["details"]) == {field}, (url, body)


def test_both_bad_page_parameters_are_named(api_owner_a):
    body = assert_error(api_owner_a.get("/api/bots?limit=9223372036854775808&offset=-1"), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"limit", "offset"}


def test_a_page_in_bounds_still_pages(api_owner_a):
    for name in ("a", "b", "c"):
        assert api_owner_a.post("/api/bots", {"name": name, "strategy": "ma_crossover", "instruments": ["ES"]},
                                format="json").status_code == 201
    page = api_owner_a.get("/api/bots?limit=2&offset=1").json()
    assert (page["count"], len(page["results"])) == (3, 2)
    assert len(api_owner_a.get("/api/bots?limit=500&offset=2147483647").json()["results"]) == 0
