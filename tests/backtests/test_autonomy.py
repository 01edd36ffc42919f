"""Autonomy scores: evidence → breakdown → gates → tier; the LIVE gate reads it; the status hook counts tiers."""

from datetime import timedelta

import pytest
from django.db import transaction

from backtests import runs as backtest_runs
from backtests import services as backtest_services
from oversight.autonomy import autonomy_compute
from backtests.models import AutonomyScore, BacktestRun
from bots import services as bot_services
from oversight.promotion import bot_promote
from bots.models import Bot, Runner, Stage
from controlplane import tenancy
from execution.tick.replay import run_replay
from tests.backtests.helpers import START, store_walk
from tests.backtests.test_backtests_api import LENIENT
from tests.conftest import present_second_factor
from tests.factories import InstrumentFactory

BARS = 96  # hourly: four days, so daily returns (and a Sharpe) exist
MINUTE = timedelta(hours=1)


@pytest.fixture
def paper_bot(tenant_a, owner_a, api_owner_a, settings):
    """A PAPER bot with a PASS backtest and a paper record made by replaying stored bars through the live tick."""
    settings.BOT_LIVE_MIN_PAPER_TRADES, settings.BOT_LIVE_MIN_PAPER_DAYS = 3, 1
    settings.METRICS_MIN_DAYS_FOR_ANNUALIZED = 1  # four days of bars must have a Sharpe for this fixture's PASS
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, BARS, timeframe="1h", base=30000.0, seed=21)
    api_owner_a.put("/api/backtests/thresholds", {"thresholds": LENIENT}, format="json")
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a,
            name="scored",
            strategy="ma_crossover",
            parameters={"fast": 3, "slow": 8, "allow_short": True},
            instruments=["BTC-USD"],
            timeframe="1h",
        )
        run = backtest_services.backtest_create(
            actor=owner_a, bot_id=bot.id, timeframe="1h", start=START, end=START + BARS * MINUTE
        )
        backtest_runs.backtest_execute(run_id=run.id)
        with transaction.atomic():
            assert BacktestRun.objects.get(pk=run.id).classification == "PASS"
        bot_promote(bot_id=bot.id, to_stage=Stage.BACKTESTED, actor=owner_a)
        bot_promote(bot_id=bot.id, to_stage=Stage.PAPER, actor=owner_a)
        runner = bot_services.runner_start(
            bot_id=bot.id,
            actor=owner_a,
            mode=Runner.Mode.REPLAY,
            replay_start=START + MINUTE,
            replay_end=START + BARS * MINUTE,
        )
        run_replay(runner_id=runner.id)
    return bot


def test_a_paper_bot_with_matching_fills_reaches_t2_and_may_go_live(
    paper_bot, tenant_a, api_owner_a, api_viewer_a, api_owner_b
):
    assert api_viewer_a.get(f"/api/bots/{paper_bot.id}/autonomy").json()["score"] is None
    assert api_viewer_a.post(f"/api/bots/{paper_bot.id}/autonomy").status_code == 403
    present_second_factor(api_owner_a)  # promotion to LIVE needs a fresh second factor
    refused = api_owner_a.post(f"/api/bots/{paper_bot.id}/promote", {"to": "LIVE"}, format="json").json()
    assert "autonomy_tier" in [g["gate"] for g in refused["details"]["gates"]]

    response = api_owner_a.post(f"/api/bots/{paper_bot.id}/autonomy")
    assert response.status_code == 201, response.content
    body = api_viewer_a.get(f"/api/bots/{paper_bot.id}/autonomy").json()
    assert body["tier"] == "T2"
    assert body["breakdown"]["paper_parity"]["parity"] == 1.0  # every paper fill matched the backtest's
    assert body["breakdown"]["paper_parity"]["paper_fills"] > 3
    gates = {g["gate"]: g for g in body["gates"]}
    assert gates["paper_parity"] == {
        "tier": "T2",
        "gate": "paper_parity",
        "passed": True,
        "value": 1.0,
        "required": ">= 0.8",
    }
    assert gates["oos_robustness"]["passed"] is False and gates["oos_robustness"]["value"] is None  # no matrix
    assert api_viewer_a.get("/api/system/status").json()["bots"]["byAutonomyTier"] == {
        "T0": 0,
        "T1": 0,
        "T2": 1,
        "T3": 0,
    }
    assert api_owner_b.get(f"/api/bots/{paper_bot.id}/autonomy").status_code == 404

    promoted = api_owner_a.post(f"/api/bots/{paper_bot.id}/promote", {"to": "LIVE"}, format="json")
    assert promoted.status_code == 200, promoted.content


def test_missing_evidence_locks_the_bot_and_a_decayed_rebacktest_drops_it(paper_bot, tenant_a, settings):
    with tenancy.tenant_context(tenant_a.id):
        assert autonomy_compute(bot_id=paper_bot.id, trigger="ON_DEMAND").tier == "T2"
        settings.BOT_LIVE_MIN_PAPER_TRADES = 500
        low = autonomy_compute(bot_id=paper_bot.id, trigger="SCHEDULE")
        assert low.tier == "T1"
        assert next(g for g in low.gates if g["gate"] == "paper_trades")["value"] < 500
        settings.BOT_LIVE_MIN_PAPER_TRADES = 3
        # The decay schedule re-backtests the bot; under strict thresholds the recent run no longer passes.
        from backtests.models import ClassificationSettings

        with transaction.atomic():
            ClassificationSettings.objects.all().delete()
        settings.BACKTEST_DECAY_LOOKBACK_DAYS = 400
        created = backtest_runs.decay_rebacktest_sweep()
        assert len(created) == 1
        backtest_runs.backtest_execute(run_id=created[0])
        with transaction.atomic():
            decay_run = BacktestRun.objects.get(pk=created[0])
        assert (decay_run.purpose, decay_run.status, decay_run.classification) == ("DECAY", "FINISHED", "FAIL")
        decayed = autonomy_compute(bot_id=paper_bot.id, trigger="SCHEDULE")
        assert decayed.tier == "T1" and decayed.breakdown["decay"]["decayed"] is True
        with transaction.atomic():
            assert Bot.objects.get(pk=paper_bot.id).autonomy_tier == "T1"
            assert AutonomyScore.objects.filter(bot=paper_bot).count() == 3


def test_a_live_bot_whose_score_falls_below_t2_is_put_in_reduce_only_with_an_incident_and_an_alert(
    paper_bot, tenant_a, owner_a, settings, json_log_lines, django_capture_on_commit_callbacks
):
    from execution.models import RiskIncident, TradingControl

    with tenancy.tenant_context(tenant_a.id):
        assert autonomy_compute(bot_id=paper_bot.id, trigger="ON_DEMAND").tier == "T2"
        bot_promote(bot_id=paper_bot.id, to_stage=Stage.LIVE, actor=owner_a)
    settings.BOT_LIVE_MIN_PAPER_TRADES = 500
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_context(tenant_a.id):
        fallen = autonomy_compute(bot_id=paper_bot.id, trigger="SCHEDULE")
        again = autonomy_compute(bot_id=paper_bot.id, trigger="SCHEDULE")
    with tenancy.tenant_context(tenant_a.id):
        control = TradingControl.objects.get(bot_id=paper_bot.id)
        [incident] = RiskIncident.objects.filter(bot_id=paper_bot.id)
    assert (fallen.tier, again.tier) == ("T1", "T1")
    assert control.state == "REDUCE_ONLY" and control.set_by == "autonomy-supervisor"  # today: still ACTIVE
    assert "below T2" in control.reason
    assert (incident.kind, incident.status) == ("autonomy_below_t2", "OPEN")
    assert incident.details["autonomy_score_id"] == fallen.id and "paper_trades" in incident.details["failed_gates"]
    [alert] = [line for line in json_log_lines() if line.get("alert")]  # one per fall, not one per score
    assert alert["alert"] == "autonomy.below_t2" and alert["incident_id"] == incident.id
