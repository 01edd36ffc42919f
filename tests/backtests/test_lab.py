"""The strategy lab end to end: experiment → matrix → shortlist with out-of-sample evidence → LAB bot; audited."""

from datetime import timedelta

from django.db import transaction

from backtests import matrices
from backtests import matrix_chunks
from backtests.models import BacktestMatrix
from controlplane import tenancy
from controlplane.models import AuditEvent
from tests.backtests.helpers import START, store_walk
from tests.backtests.test_backtests_api import LENIENT
from tests.factories import InstrumentFactory


def _body(**overrides):
    body = {
        "name": "trend on btc",
        "hypothesis": "Short MAs catch hourly BTC trends.",
        "strategy": "ma_crossover",
        "instruments": ["BTC-USD"],
        "timeframe": "1h",
        "parameter_space": {"fast": [3, 5], "slow": [20, 30]},
        "start": START.isoformat(),
        "end": (START + timedelta(hours=1200)).isoformat(),
        "split_at": (START + timedelta(hours=800)).isoformat(),
    }
    body.update(overrides)
    return body


def _finish_matrix(tenant, matrix_id):
    """What the backtests workers do with the matrix's chunks (run synchronously, the real service)."""
    with tenancy.tenant_context(tenant.id):
        with transaction.atomic():
            matrix = BacktestMatrix.objects.get(pk=matrix_id)
        size = matrices.settings.BACKTEST_MATRIX_CHUNK_SIZE
        for lo in range(0, matrix.sets_total, size):
            matrix_chunks.run_chunk(matrix_id=matrix_id, first=lo, stop=min(lo + size, matrix.sets_total))


def test_lab_workflow_from_hypothesis_to_a_linked_lab_bot(
    api_operator_a, api_viewer_a, api_owner_b, tenant_a, settings
):
    settings.METRICS_MIN_DAYS_FOR_ANNUALIZED = 1  # the 50-day range's out-of-sample part is under 30 days
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, 1200, timeframe="1h", base=30000.0, seed=4)
    # Thresholds a random walk can pass, so the shortlist has a validated candidate to turn into a bot.
    lenient = {**LENIENT, "min_oos_is_sharpe_ratio": -100, "marginal_min_oos_is_sharpe_ratio": -200}
    assert api_operator_a.put("/api/backtests/thresholds", {"thresholds": lenient}, format="json").status_code == 200
    created = api_operator_a.post("/api/lab/experiments", _body(), format="json")
    assert created.status_code == 201, created.content
    experiment = created.json()
    assert experiment["status"] == "DRAFT"
    url = f"/api/lab/experiments/{experiment['id']}"

    early = api_operator_a.post(f"{url}/shortlist", {"indexes": [0]}, format="json")
    assert (early.status_code, early.json()["error_code"]) == (409, "ILLEGAL_TRANSITION")
    running = api_operator_a.post(f"{url}/run").json()
    assert running["status"] == "RUNNING" and running["matrix"]
    not_yet = api_operator_a.post(f"{url}/shortlist", {"indexes": [0]}, format="json")
    assert not_yet.status_code == 409 and "not FINISHED" in not_yet.json()["message"]

    _finish_matrix(tenant_a, running["matrix"])
    ranked = api_operator_a.get(f"/api/backtests/matrix/{running['matrix']}").json()["results"]
    picks = [ranked[0]["index"], ranked[-1]["index"]]
    shortlisted = api_operator_a.post(f"{url}/shortlist", {"indexes": picks}, format="json").json()
    assert shortlisted["status"] == "SHORTLISTED"
    entry = shortlisted["shortlist"][0]
    assert entry["out_of_sample"]["number_of_trades"] >= 0 and entry["in_sample"]["end_equity"]

    validated = next((c for c in shortlisted["shortlist"] if c["oos_validated"]), None)
    failed = next((c for c in shortlisted["shortlist"] if not c["oos_validated"]), None)
    if failed is not None:
        refused = api_operator_a.post(f"{url}/create-bot", {"index": failed["index"], "name": "nope"}, format="json")
        assert refused.status_code == 400 and "index" in refused.json()["details"]
    assert validated is not None
    if validated is not None:
        made = api_operator_a.post(
            f"{url}/create-bot", {"index": validated["index"], "name": "from-lab"}, format="json"
        )
        assert made.status_code == 201, made.content
        bot = api_operator_a.get(f"/api/bots/{made.json()['bot_id']}").json()
        assert (bot["stage"], bot["parameters"]) == ("LAB", validated["parameters"])
        linked = api_viewer_a.get(url).json()["shortlist"]
        assert next(c for c in linked if c["index"] == validated["index"])["bot_id"] == bot["id"]
        again = api_operator_a.post(f"{url}/create-bot", {"index": validated["index"], "name": "twice"}, format="json")
        assert again.status_code == 400

    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        actions = list(AuditEvent.objects.filter(resource_type="lab_experiment").values_list("action", flat=True))
    assert {"lab.create", "lab.run", "lab.shortlist"} <= set(actions)

    assert api_viewer_a.post(f"{url}/run").status_code == 403
    assert api_owner_b.get(url).status_code == 404
    assert api_owner_b.get("/api/lab/experiments").json()["results"] == []
    assert [e["id"] for e in api_viewer_a.get("/api/lab/experiments").json()["results"]] == [experiment["id"]]


def test_lab_validation_names_the_field(api_operator_a, db):
    InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    for body, field in [
        (_body(strategy="nope"), "strategy"),
        (_body(parameter_space={"x": [1]}), "space"),
        (_body(split_at=START.isoformat()), "split_at"),
        (_body(hypothesis=""), "hypothesis"),
    ]:
        response = api_operator_a.post("/api/lab/experiments", body, format="json")
        assert response.status_code == 400 and field in response.json()["details"], (field, response.content)
