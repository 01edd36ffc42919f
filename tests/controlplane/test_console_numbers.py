"""Numbers the console shows are measured: a list's count is real up to a cap, and past it says so."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.admin import BoundedCountPaginator
from execution.models import TickBatch
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


@pytest.fixture
def console(client, tenant_a):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def tick_batches(count: int) -> None:
    TickBatch.objects.bulk_create(
        TickBatch(instrument_symbol="ES", timeframe="1m", as_of=T0 + timedelta(minutes=i), trace_id=f"batch-{i:08d}")
        for i in range(count)
    )


def result_count(page: str) -> str:
    return " ".join(re.search(r'class="py-4 result-count">(.*?)</div>', page, re.S).group(1).split())


def test_a_list_of_two_rows_says_two_and_offers_no_second_page(console):
    tick_batches(2)
    page = console.get("/admin/execution/tickbatch/").content.decode()
    assert result_count(page) == "2 tick batches"
    assert "?p=2" not in page and "10000" not in page and "10,000" not in page


def test_past_the_cap_the_count_says_more_than_and_where_counting_stopped(console, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "count_cap", 3)
    tick_batches(5)
    page = console.get("/admin/execution/tickbatch/").content.decode()
    assert result_count(page) == "more than 3 tick batches (counting stopped at 3)"
    assert "more than 3 results" in page  # the page header says it the same way
    assert not re.search(r"\b4 (results|tick batches)", page)


def test_pages_offered_are_the_pages_the_counted_rows_fill(console):
    tick_batches(150)
    page = console.get("/admin/execution/tickbatch/").content.decode()
    assert result_count(page).endswith("150 tick batches")
    assert "?p=2" in page and "?p=3" not in page


def test_past_the_cap_the_last_page_is_full_and_no_page_is_empty(monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "count_cap", 3)
    tick_batches(7)
    paginator = BoundedCountPaginator(TickBatch.objects.order_by("as_of"), per_page=3)
    assert paginator.count_is_lower_bound and paginator.count > 3 and str(paginator.count) == "more than 3"
    assert paginator.num_pages == 2
    assert len(paginator.page(2).object_list) == 3  # rows 4 to 6: the 4th is not the last row there is
    exact = BoundedCountPaginator(TickBatch.objects.filter(trace_id="batch-00000001").order_by("id"), per_page=2)
    assert exact.count == 1 and not exact.count_is_lower_bound
