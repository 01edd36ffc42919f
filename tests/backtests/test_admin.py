"""The backtests observatory: every page renders for a tenant's staff and shows none of another tenant's rows."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client

from backtests import lab, matrices, services
from oversight import autonomy
from backtests.models import (
    AutonomyScore,
    BacktestMatrix,
    BacktestRun,
    ClassificationSettings,
    LabExperiment,
    MatrixResult,
)
from bots import services as bot_services
from controlplane import tenancy
from controlplane.models import Membership
from tests.backtests.helpers import START
from tests.factories import InstrumentFactory, UserFactory

pytestmark = pytest.mark.django_db

MODELS = ("backtestrun", "backtestmatrix", "matrixresult", "labexperiment", "autonomyscore", "classificationsettings")


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    """Admin pages render without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _research(tenant, owner, tag: str) -> dict:
    """One row of each kind for the tenant, made by the services the API calls (the matrix result as a chunk
    would store it)."""
    end, split = START + timedelta(hours=600), START + timedelta(hours=400)
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name=f"bot-{tag}",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["BTC-USD"],
            venue="sim",
            data_source="imported",
        )
        run = services.backtest_create(actor=owner, bot_id=bot.id, start=START, end=end)
        matrix = matrices.matrix_create(
            actor=owner,
            strategy="ma_crossover",
            space={"fast": [5], "slow": [20]},
            mode="grid",
            instruments=["BTC-USD"],
            timeframe="1h",
            start=START,
            end=end,
            split_at=split,
        )
        with transaction.atomic():
            result = MatrixResult.objects.create(
                matrix=matrix,
                index=0,
                parameters={"fast": 5, "slow": 20},
                parameters_hash=f"hash-{tag}",
                in_sample={"sharpe": 1.25, "number_of_trades": 40},
                out_of_sample={"sharpe": 0.75},
                classification="MARGINAL",
                classification_reasons=[],
                score=0.75,
            )
        experiment = lab.experiment_create(
            actor=owner,
            name=f"lab-{tag}",
            hypothesis="crossovers trend",
            strategy="ma_crossover",
            instruments=["BTC-USD"],
            timeframe="1h",
            parameter_space={"fast": [5], "slow": [20]},
            start=START,
            end=end,
            split_at=split,
        )
        score = autonomy.autonomy_compute(bot_id=bot.id, trigger=AutonomyScore.Trigger.ON_DEMAND, actor=owner)
        thresholds = services.thresholds_update(actor=owner, overrides={"min_trades": 12})
    return {
        "bot": bot,
        "backtestrun": run,
        "backtestmatrix": matrix,
        "matrixresult": result,
        "labexperiment": experiment,
        "autonomyscore": score,
        "classificationsettings": thresholds,
    }


@pytest.fixture
def rows(tenant_a, tenant_b, owner_a, owner_b):
    InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    return _research(tenant_a, owner_a, "a"), _research(tenant_b, owner_b, "b")


@pytest.fixture
def staff_of_a(tenant_a):
    user = UserFactory(username="staff-a", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="backtests", codename__startswith="view_")
    )
    with tenancy.tenant_context(tenant_a.id):
        Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    return client


def _change_url(model: str, pk: int) -> str:
    return f"/admin/backtests/{model}/{pk}/change/"


def test_each_changelist_shows_the_tenants_rows_and_not_another_tenants(staff_of_a, rows):
    mine, theirs = rows
    for model in MODELS:
        response = staff_of_a.get(f"/admin/backtests/{model}/")
        assert response.status_code == 200, model
        page = response.content.decode()
        assert _change_url(model, mine[model].pk) in page, model
        assert _change_url(model, theirs[model].pk) not in page, model
    runs = staff_of_a.get("/admin/backtests/backtestrun/?status__exact=QUEUED&q=bot-a").content.decode()
    assert f"/admin/bots/bot/{mine['bot'].pk}/change/" in runs and "bot-b" not in runs
    assert "bot-a" in staff_of_a.get("/admin/backtests/autonomyscore/?tier__exact=T0").content.decode()
    results = staff_of_a.get(f"/admin/backtests/matrixresult/?matrix__id__exact={mine['backtestmatrix'].pk}")
    assert "1.25" in results.content.decode() and "MARGINAL" in results.content.decode()


def test_detail_pages_render_read_only_for_the_tenant_and_hide_another_tenants(staff_of_a, rows):
    mine, theirs = rows
    for model in MODELS:
        page = staff_of_a.get(_change_url(model, mine[model].pk))
        assert page.status_code == 200, model
        assert b'name="_save"' not in page.content, model
        # Another tenant's row does not exist here: the admin's "doesn't exist" redirect to the index.
        hidden = staff_of_a.get(_change_url(model, theirs[model].pk))
        assert (hidden.status_code, hidden["Location"]) == (302, "/admin/"), model
    assert staff_of_a.get("/admin/backtests/backtestrun/add/").status_code == 403
    with tenancy.tenant_context(mine["bot"].tenant_id), transaction.atomic():
        assert BacktestRun.objects.count() == BacktestMatrix.objects.count() == LabExperiment.objects.count() == 1
        assert ClassificationSettings.objects.get().thresholds == {"min_trades": 12}


def test_progress_panels_poll_while_running_stop_when_done_and_hide_another_tenants(staff_of_a, rows, owner_a):
    mine, theirs = rows
    run, matrix = mine["backtestrun"], mine["backtestmatrix"]
    panel = staff_of_a.get(f"/admin/backtests/backtestrun/{run.pk}/progress/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and 'hx-trigger="every 5s"' in panel.content.decode()
    assert "HX-Refresh" not in panel
    page = staff_of_a.get(_change_url("backtestrun", run.pk)).content.decode()
    assert f'hx-get="/admin/backtests/backtestrun/{run.pk}/progress/"' in page
    matrix_panel = staff_of_a.get(f"/admin/backtests/backtestmatrix/{matrix.pk}/progress/")
    assert 'data-status="RUNNING"' in matrix_panel.content.decode()
    with tenancy.tenant_context(run.tenant_id):
        services.run_or_matrix_cancel(model=BacktestRun, pk=run.pk, actor=owner_a)
        services.run_or_matrix_cancel(model=BacktestMatrix, pk=matrix.pk, actor=owner_a)
    for model, pk in (("backtestrun", run.pk), ("backtestmatrix", matrix.pk)):
        ended = staff_of_a.get(f"/admin/backtests/{model}/{pk}/progress/")
        assert ended["HX-Refresh"] == "true" and "hx-trigger" not in ended.content.decode(), model
    for model in ("backtestrun", "backtestmatrix"):
        assert staff_of_a.get(f"/admin/backtests/{model}/{theirs[model].pk}/progress/").status_code == 404


def test_the_matrix_page_names_its_dropped_combinations_and_draws_the_heatmap(staff_of_a, rows):
    mine, _ = rows
    matrix = mine["backtestmatrix"]
    page = staff_of_a.get(_change_url("backtestmatrix", matrix.pk) + "?x=fast&y=slow").content.decode()
    assert 'id="sets-requested">1<' in page and 'id="sets-dropped">0<' in page
    assert 'data-score="0.75"' in page  # the one result's cell
    assert 'class="ranked-result" data-index="0"' in page
