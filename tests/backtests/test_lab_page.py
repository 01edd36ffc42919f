"""The lab experiment page (issue 14): its steps with the action of each, through the lab services, for
operators; a refusal shows its code, fix and trace id; viewers get no action."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.db import transaction

from backtests.models import LabExperiment
from controlplane import tenancy
from controlplane.models import Membership
from tests.backtests.helpers import store_walk
from tests.backtests.test_backtests_api import LENIENT
from tests.backtests.test_lab import _body, _finish_matrix
from tests.factories import InstrumentFactory, UserFactory


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _console(tenant, role) -> Client:
    user = UserFactory(username=f"{role}-lab", is_staff=True)
    with tenancy.tenant_context(tenant.id):
        Membership.objects.create(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def _states(page: str) -> dict:
    import re

    return dict(re.findall(r'data-step="(\w+)" data-state="(\w+)"', page))


def test_an_operator_takes_each_step_from_the_page(api_operator_a, tenant_a, settings):
    settings.METRICS_MIN_DAYS_FOR_ANNUALIZED = 1
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, 1200, timeframe="1h", base=30000.0, seed=4)
    lenient = {**LENIENT, "min_oos_is_sharpe_ratio": -100, "marginal_min_oos_is_sharpe_ratio": -200}
    api_operator_a.put("/api/backtests/thresholds", {"thresholds": lenient}, format="json")
    experiment = api_operator_a.post("/api/lab/experiments", _body(), format="json").json()
    operator, viewer = _console(tenant_a, Membership.Role.OPERATOR), _console(tenant_a, Membership.Role.VIEWER)
    url = f"/admin/backtests/labexperiment/{experiment['id']}/change/"
    step = f"/admin/backtests/labexperiment/{experiment['id']}/step/"

    page = operator.get(url).content.decode()
    assert _states(page) == {"draft": "current", "running": "upcoming", "shortlisted": "upcoming", "bot": "upcoming"}
    assert 'id="lab-run"' in page and "return confirm(" in page
    assert 'id="lab-run"' not in viewer.get(url).content.decode()
    assert viewer.post(step, {"step": "run"}).status_code == 403

    refused = operator.post(step, {"step": "shortlist", "indexes": ["0"]}, follow=True)
    message = [str(m) for m in get_messages(refused.wsgi_request)][-1]
    assert "ILLEGAL_TRANSITION" in message and "Fix:" in message and "trace" in message

    operator.post(step, {"step": "run"})
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        matrix_id = LabExperiment.objects.get(pk=experiment["id"]).matrix_id
    assert _states(operator.get(url).content.decode())["running"] == "current"
    _finish_matrix(tenant_a, matrix_id)
    page = operator.get(url).content.decode()
    assert _states(page)["shortlisted"] == "current" and 'class="lab-candidate"' in page

    operator.post(step, {"step": "shortlist", "indexes": ["0", "1"]})
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        shortlist = LabExperiment.objects.get(pk=experiment["id"]).shortlist
    validated = next(c for c in shortlist if c["oos_validated"])
    done = operator.post(
        step, {"step": "create_bot", "index": str(validated["index"]), "name": "from the page"}, follow=True
    )
    assert "created" in [str(m) for m in get_messages(done.wsgi_request)][-1]
    page = operator.get(url).content.decode()
    assert _states(page)["bot"] == "done" and "/admin/bots/bot/" in page
