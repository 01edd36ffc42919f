"""Bad input is a 400 in the error shape naming what is wrong, never a 500: the fuzzer's reproductions of issue 12."""

import pytest
from django import forms
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin

from controlplane.filters import BoundedIsoDateTimeField, FilterBackend, FilterSet
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


DATETIME_FILTERS = [("/api/intents", "created_after"), ("/api/intents", "created_before"),
                    ("/api/audit-events", "created_after"), ("/api/audit-events", "created_before")]
BAD_DATETIMES = ["2026-12-01T00:00:00%2B16:00", "2026-12-01T00:00:00-16:00", "10000-01-01T00:00:00Z",
                 "10000-01-01", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00%2B05:00"]


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
    bot = api_owner_a.post("/api/bots", {"name": "t", "strategy": "ma_crossover", "instruments": ["ES"]},
                           format="json").json()["id"]
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
    filtersets = {backend.get_filterset_class(view(), view.queryset if view.queryset is not None else _model(view))
                  for view in _views() if getattr(view, "filterset_class", None) or getattr(view, "filterset_fields",
                                                                                            None)}
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
