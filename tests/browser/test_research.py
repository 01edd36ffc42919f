"""The research pages in a browser (issue 14): the backtest report draws its equity and drawdown from the run's
stored curve and its progress moves by itself while the run is queued or running."""

from datetime import timedelta

from backtests import runs, services
from controlplane import tenancy
from tests.backtests.helpers import START, store_walk
from tests.browser.conftest import login
from tests.factories import InstrumentFactory

HOURS = 1000  # 41 days of hourly bars: long enough for annualized figures


def test_the_backtest_report_moves_by_itself_then_draws_its_charts(page, console_server, console_people, shot):
    owner, tenant = console_people["owner"], console_people["tenant"]
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, HOURS, timeframe="1h", base=30000.0, seed=4)
    with tenancy.tenant_context(tenant.id):
        run = services.backtest_create(
            actor=owner,
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["BTC-USD"],
            timeframe="1h",
            start=START,
            end=START + timedelta(hours=HOURS),
            fill_model={"slippage_bps": 1, "fee_bps": 2},
        )
    url = f"/admin/backtests/backtestrun/{run.id}/change/"
    login(page, console_server, "operator-acme", url)
    progress = page.locator("#backtest-progress")
    assert progress.get_attribute("data-status") == "QUEUED"
    assert progress.get_attribute("hx-trigger") == "every 5s"
    shot(page, "backtest-report-queued")

    with tenancy.tenant_context(tenant.id):  # what the worker does; the page is not reloaded by the test
        runs.backtest_execute(run_id=run.id)
    page.wait_for_selector("#backtest-progress[data-status=FINISHED]", timeout=20_000)
    page.wait_for_selector("#equity-chart", timeout=10_000)
    points = page.evaluate("""() => ['equity-chart', 'drawdown-chart'].map(
        id => Chart.getChart(document.getElementById(id)).data.datasets[0].data.length)""")
    assert points[0] == points[1] >= 900, points
    assert page.locator("#backtest-progress").get_attribute("hx-trigger") is None  # finished: no more polling
    assert page.locator("tr.check").count() >= 4
    assert page.locator("tr.trade").count() > 10
    assert page.locator("tr.no-trade-month").count() >= 2
    assert page.locator("tr.metric[data-metric=sharpe] td").first.inner_text() != "—"
    shot(page, "backtest-report-finished")
    shot(page, "backtest-report", full_page=False)  # the README's: progress, checks, equity and drawdown


def test_the_matrix_page_shows_progress_drops_a_heatmap_and_the_ranking(
    page, console_server, console_people, shot, settings
):
    from django.db import transaction

    from backtests import matrices, matrix_chunks
    from backtests.models import BacktestMatrix

    owner, tenant = console_people["owner"], console_people["tenant"]
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, 2400, timeframe="1h", base=30000.0, seed=4)  # 100 days: IS 70, OOS 30
    with tenancy.tenant_context(tenant.id):
        matrix = matrices.matrix_create(
            actor=owner,
            strategy="ma_crossover",
            mode="grid",
            space={"fast": [3, 5, 10, 20, 40], "slow": [10, 20, 30, 60]},
            instruments=["BTC-USD"],
            timeframe="1h",
            start=START,
            end=START + timedelta(hours=2400),
            split_at=START + timedelta(hours=1680),
        )
    url = f"/admin/backtests/backtestmatrix/{matrix.id}/change/"
    login(page, console_server, "operator-acme", url)
    assert page.locator("#matrix-progress").get_attribute("data-status") == "RUNNING"
    assert page.locator("#matrix-progress").get_attribute("hx-trigger") == "every 5s"
    assert page.locator("#sets-requested").inner_text() == "20"
    assert page.locator("#sets-dropped").inner_text() == str(20 - matrix.sets_total)
    assert page.locator("tr.drop-reason").count() >= 1
    with tenancy.tenant_context(tenant.id):  # the worker runs the chunks; the page finds out by itself
        with transaction.atomic():
            matrix = BacktestMatrix.objects.get(pk=matrix.id)
        for lo in range(0, matrix.sets_total, settings.BACKTEST_MATRIX_CHUNK_SIZE):
            matrix_chunks.run_chunk(
                matrix_id=matrix.id, first=lo, stop=min(lo + settings.BACKTEST_MATRIX_CHUNK_SIZE, matrix.sets_total)
            )
    page.wait_for_selector("#matrix-progress[data-status=FINISHED]", timeout=20_000)
    rows = page.locator("tr.ranked-result")
    assert rows.count() == matrix.sets_total
    enough = [rows.nth(i).get_attribute("data-enough") for i in range(rows.count())]
    assert enough == sorted(enough, reverse=True)  # "yes" before "no"
    cells = page.locator("#heatmap td.cp-heat-cell[data-score]:not([data-score=''])")
    assert cells.count() >= 5
    shot(page, "matrix-page")
    shot(page, "matrix-page-top", full_page=False)
    page.select_option("select[name=x]", "slow")
    page.select_option("select[name=y]", "fast")
    page.click("#heatmap button[type=submit]")
    page.wait_for_url("**x=slow**")
    assert page.locator("#heatmap thead th").nth(0).inner_text().startswith("fast")
