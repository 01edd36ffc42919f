"""GET /api/market-hours: every persona reads the same global calendar data; errors in the one shape."""

import pytest
from rest_framework.test import APIClient

from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def es():
    return InstrumentFactory(symbol="ESAPI", calendar="CME_Equity")


def test_a_viewer_reads_the_market_status_at_a_time(api_viewer_a, es):
    response = api_viewer_a.get("/api/market-hours", {"instrument": "ESAPI", "at": "2026-11-24T16:30:00-06:00"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["instrument"] == "ESAPI" and body["calendar"] == "CME_Equity"
    assert body["is_open"] is False and body["session"] is None
    assert body["next_open"] == "2026-11-24T23:00:00Z"
    assert body["next_close"] == "2026-11-25T22:00:00Z"


def test_without_at_it_answers_for_now(api_viewer_a, es):
    body = api_viewer_a.get("/api/market-hours", {"instrument": "ESAPI"}).json()
    assert isinstance(body["is_open"], bool)
    assert body["next_open"] is not None and body["next_close"] is not None


def test_instruments_are_shared_reference_data_for_every_tenant(api_owner_a, api_owner_b, es):
    query = {"instrument": "ESAPI", "at": "2026-11-24T10:00:00-06:00"}
    assert api_owner_a.get("/api/market-hours", query).json() == api_owner_b.get("/api/market-hours", query).json()


def test_an_unknown_instrument_is_404_in_the_error_shape(api_viewer_a):
    response = api_viewer_a.get("/api/market-hours", {"instrument": "NOPE"})
    assert response.status_code == 404
    body = response.json()
    assert body["error_code"] == "NOT_FOUND" and "NOPE" in body["message"]
    assert body["trace_id"] and body["suggested_fix"]


def test_a_missing_instrument_is_400_naming_the_field(api_viewer_a):
    response = api_viewer_a.get("/api/market-hours")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert "instrument" in response.json()["details"]


def test_a_malformed_at_is_400_naming_the_field(api_viewer_a, es):
    response = api_viewer_a.get("/api/market-hours", {"instrument": "ESAPI", "at": "yesterday"})
    assert response.status_code == 400 and "at" in response.json()["details"]


def test_anonymous_callers_are_refused(es):
    response = APIClient().get("/api/market-hours", {"instrument": "ESAPI"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
