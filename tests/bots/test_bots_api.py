"""Bots over the API: create and edit, stages and gates, kill at three levels, reconcile, starter pack."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from backtests.models import BacktestRun, RunStatus
from bots import services as bot_services
from bots.models import Bot, CancelRequest, Reconciliation, Runner, Stage
from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.orders import oms
from execution.orders.intents import submit_intent
from execution.models import StrategyPosition
from execution.orders.paper_venue import match_working_orders
from tests.assertions import assert_error, audit_actions
from tests.conftest import client_for, present_second_factor
from tests.execution.conftest import T0, buy
from tests.execution.helpers import store_bars

pytestmark = pytest.mark.django_db

NEW_BOT = {"name": "trend", "strategy": "ma_crossover", "parameters": {"fast": 5, "slow": 20}, "instruments": ["ES"]}


def passing_backtest(bot, classification="PASS", parameters_hash=None):
    with tenancy.tenant_context(bot.tenant_id):
        now = timezone.now()
        return BacktestRun.objects.create(
            bot=bot,
            strategy=bot.strategy,
            parameters=bot.parameters,
            parameters_hash=parameters_hash or bot.parameters_hash,
            instruments=bot.instruments,
            timeframe="1m",
            range_start=now - timedelta(days=30),
            range_end=now,
            starting_capital=100_000,
            status=RunStatus.FINISHED,
            classification=classification,
            metrics={"sharpe": 1.4},
            trace_id="t" * 16,
            created_by="test",
            finished_at=now,
        )


def fill_on_the_sim_venue(bot, quantity="1", key="paper-1"):
    """A real order of ``bot`` through the OMS, filled by the sim venue on stored ES bars: its position (both our
    book and the venue's) moves by ``quantity``; a PAPER bot's fill counts in its paper record."""
    from execution.models import Instrument

    es = Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]
    store_bars(es, T0, 3)
    with tenancy.tenant_context(bot.tenant_id):
        submit_intent(bot=bot, legs=[buy(quantity)], idempotency_key=key, source="tick", bar_ts=T0)
        oms.process_pending_intents()
        match_working_orders(instrument=es, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))


# --- create and edit ----------------------------------------------------------------------------------------


def test_operator_creates_a_bot_in_lab_with_validated_parameters(api_operator_a, tenant_a):
    response = api_operator_a.post("/api/bots", NEW_BOT, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stage"] == "LAB" and body["venue"] == "sim" and body["data_source"] == "imported"
    assert body["parameters"] == {"fast": 5, "slow": 20, "size": 1.0, "allow_short": False}
    assert audit_actions(tenant_a, "bot", body["id"]) == ["bot.create"]


def test_invalid_parameters_are_refused_naming_the_field(api_operator_a, tenant_a):
    response = api_operator_a.post("/api/bots", {**NEW_BOT, "parameters": {"fast": 50, "slow": 20}}, format="json")
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["details"] == {"parameters": {"fast": ["Must be smaller than slow (20)."]}}
    unknown = api_operator_a.post("/api/bots", {**NEW_BOT, "strategy": "martingale"}, format="json")
    assert "strategy" in assert_error(unknown, 400, "VALIDATION_ERROR")["details"]
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.count() == 0


def test_viewer_reads_but_cannot_create(api_viewer_a, make_bot):
    make_bot()
    assert api_viewer_a.get("/api/bots").json()["count"] == 1
    assert_error(api_viewer_a.post("/api/bots", NEW_BOT, format="json"), 403, "PERMISSION_DENIED")


def test_list_filters_by_stage(api_viewer_a, make_bot):
    make_bot(name="a")
    make_bot(name="b", stage=Stage.PAPER)
    names = [bot["name"] for bot in api_viewer_a.get("/api/bots?stage=PAPER").json()["results"]]
    assert names == ["b"]


def test_changing_parameters_of_a_paper_bot_sends_it_back_to_lab(api_operator_a, make_bot, tenant_a):
    bot = make_bot(stage=Stage.PAPER)
    response = api_operator_a.patch(f"/api/bots/{bot.id}", {"parameters": {"fast": 7, "slow": 20}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["stage"] == "LAB"
    assert audit_actions(tenant_a, "bot", bot.id)[-2:] == ["bot.update", "bot.demote"]


def test_renaming_a_paper_bot_keeps_its_stage(api_operator_a, make_bot):
    bot = make_bot(stage=Stage.PAPER)
    response = api_operator_a.patch(f"/api/bots/{bot.id}", {"name": "renamed"}, format="json")
    assert response.json()["stage"] == "PAPER" and response.json()["name"] == "renamed"


# --- stages and gates -----------------------------------------------------------------------------------------


def test_promote_to_backtested_needs_a_passing_backtest_of_the_current_parameters(api_operator_a, make_bot):
    bot = make_bot()
    body = assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/promote", {}, format="json"), 409, "PROMOTION_GATE_FAILED"
    )
    assert [gate["gate"] for gate in body["details"]["gates"]] == ["backtest_passed"]
    assert body["details"]["gates"][0]["suggested_fix"]
    passing_backtest(bot, classification="MARGINAL")
    passing_backtest(bot, parameters_hash="0" * 64)
    assert_error(api_operator_a.post(f"/api/bots/{bot.id}/promote", {}, format="json"), 409, "PROMOTION_GATE_FAILED")
    passing_backtest(bot)
    response = api_operator_a.post(f"/api/bots/{bot.id}/promote", {"to": "BACKTESTED"}, format="json")
    assert response.status_code == 200 and response.json()["stage"] == "BACKTESTED"


def test_promote_to_paper_passes_for_sim_on_imported_bars(api_operator_a, make_bot, tenant_a):
    bot = make_bot(stage=Stage.BACKTESTED)
    response = api_operator_a.post(f"/api/bots/{bot.id}/promote", {"to": "PAPER"}, format="json")
    assert response.status_code == 200 and response.json()["stage"] == "PAPER"
    assert audit_actions(tenant_a, "bot", bot.id)[-1] == "bot.promote"


def test_promote_to_paper_is_refused_while_the_data_source_is_not_verified(api_operator_a, make_bot):
    bot = make_bot(stage=Stage.BACKTESTED, data_source="databento")
    body = assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/promote", {"to": "PAPER"}, format="json"), 409, "PROMOTION_GATE_FAILED"
    )
    assert body["details"]["gates"][0]["gate"] == "data_source_verified"
    assert "databento" in body["details"]["gates"][0]["message"]


def test_promote_to_live_without_a_paper_record_fails_with_each_gate(api_operator_a, make_bot):
    bot = make_bot(stage=Stage.PAPER, venue="ironbeam")
    present_second_factor(api_operator_a)
    body = assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json"), 409, "PROMOTION_GATE_FAILED"
    )
    gates = {gate["gate"]: gate for gate in body["details"]["gates"]}
    assert list(gates) == ["paper_record", "venue_verified", "live_reconcile", "owner_approval", "autonomy_tier"]
    assert gates["live_reconcile"]["suggested_fix"].startswith(f"Run POST /api/bots/{bot.id}/reconcile")


def _grant_tier(bot, tier):
    with tenancy.tenant_context(bot.tenant_id):
        bot_services.bot_set_autonomy_tier(bot_id=bot.id, tier=tier, actor_name="test")


def test_promote_to_live_by_an_owner_with_a_paper_record(api_owner_a, api_operator_a, make_bot, settings):
    settings.BOT_LIVE_MIN_PAPER_TRADES, settings.BOT_LIVE_MIN_PAPER_DAYS = 1, 1
    bot = make_bot(stage=Stage.PAPER)
    fill_on_the_sim_venue(bot)
    body = assert_error(
        api_owner_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json"), 403, "STEP_UP_REQUIRED"
    )
    assert body["details"]["action"] == f"Promoting bot {bot.name} to LIVE"
    present_second_factor(api_owner_a)
    present_second_factor(api_operator_a)
    body = assert_error(
        api_owner_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json"), 409, "PROMOTION_GATE_FAILED"
    )
    assert [gate["gate"] for gate in body["details"]["gates"]] == ["autonomy_tier"]  # T0: not yet scored to T2
    _grant_tier(bot, "T2")
    body = assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json"), 409, "PROMOTION_GATE_FAILED"
    )
    assert [gate["gate"] for gate in body["details"]["gates"]] == ["owner_approval"]
    response = api_owner_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json")
    assert response.status_code == 200 and response.json()["stage"] == "LIVE"
    assert response.json()["live_approved_at"]


def test_promote_to_live_refused_while_the_tenant_is_killed(api_owner_a, make_bot, settings):
    settings.BOT_LIVE_MIN_PAPER_TRADES, settings.BOT_LIVE_MIN_PAPER_DAYS = 1, 1
    bot = make_bot(stage=Stage.PAPER)
    fill_on_the_sim_venue(bot)
    _grant_tier(bot, "T3")
    api_owner_a.post("/api/tenant/kill", {"reason": "drill"}, format="json")
    present_second_factor(api_owner_a)
    body = assert_error(
        api_owner_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json"), 409, "PROMOTION_GATE_FAILED"
    )
    assert [gate["gate"] for gate in body["details"]["gates"]] == ["not_killed"]


def test_skipping_a_stage_is_an_illegal_transition(api_operator_a, make_bot):
    bot = make_bot()
    body = assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json"), 409, "ILLEGAL_TRANSITION"
    )
    assert body["details"] == {"current": "LAB", "requested": "LIVE"}


def test_demotion_is_always_allowed_and_retired_is_final(api_operator_a, make_bot):
    bot = make_bot(stage=Stage.LIVE)
    assert api_operator_a.post(f"/api/bots/{bot.id}/demote", {}, format="json").json()["stage"] == "PAPER"
    assert api_operator_a.post(f"/api/bots/{bot.id}/demote", {"to": "LAB"}, format="json").json()["stage"] == "LAB"
    assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/demote", {"to": "PAPER"}, format="json"), 409, "ILLEGAL_TRANSITION"
    )
    assert (
        api_operator_a.post(f"/api/bots/{bot.id}/demote", {"to": "RETIRED"}, format="json").json()["stage"] == "RETIRED"
    )
    assert_error(api_operator_a.post(f"/api/bots/{bot.id}/promote", {}, format="json"), 409, "ILLEGAL_TRANSITION")
    assert_error(api_operator_a.patch(f"/api/bots/{bot.id}", {"name": "x"}, format="json"), 409, "BOT_RETIRED")
    assert_error(api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 409, "BOT_RETIRED")


# --- kill switches ------------------------------------------------------------------------------------------


def test_bot_kill_records_a_cancel_request_the_oms_carries_out_on_commit_and_refuses_start(
    api_operator_a, make_bot, tenant_a, django_capture_on_commit_callbacks
):
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=False) as on_commit:
        response = api_operator_a.post(f"/api/bots/{bot.id}/kill", {"reason": "runaway"}, format="json")
    assert response.status_code == 200 and response.json()["killed"] is True
    with tenancy.tenant_context(tenant_a.id):
        cancel = CancelRequest.objects.get()
    assert (cancel.scope, cancel.bot_id, cancel.status) == ("BOT", bot.id, "PENDING")  # nothing before the commit
    for callback in on_commit:
        callback()
    with tenancy.tenant_context(tenant_a.id):
        cancel.refresh_from_db()
    assert cancel.status == "DONE" and cancel.result["orders_cancelled"] == 0  # the OMS, through the declared hook
    assert audit_actions(tenant_a, "bot", bot.id)[-1] == "bot.kill"
    assert_error(api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 409, "BOT_KILLED")


def test_kill_needs_a_reason(api_operator_a, make_bot):
    bot = make_bot()
    body = assert_error(api_operator_a.post(f"/api/bots/{bot.id}/kill", {}, format="json"), 400, "VALIDATION_ERROR")
    assert "reason" in body["details"]


def test_unkill_needs_an_owner_and_a_positions_decision_or_flat_reconcile(api_operator_a, api_owner_a, make_bot):
    bot = make_bot()
    api_operator_a.post(f"/api/bots/{bot.id}/kill", {"reason": "drill"}, format="json")
    assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/unkill", {"reason": "ok"}, format="json"), 403, "PERMISSION_DENIED"
    )
    assert_error(
        api_owner_a.post(f"/api/bots/{bot.id}/unkill", {"reason": "ok"}, format="json"), 403, "STEP_UP_REQUIRED"
    )
    present_second_factor(api_owner_a)
    assert_error(
        api_owner_a.post(f"/api/bots/{bot.id}/unkill", {"reason": "ok"}, format="json"), 409, "UNKILL_NEEDS_RECONCILE"
    )
    reconcile = api_owner_a.post(f"/api/bots/{bot.id}/reconcile", format="json")
    assert reconcile.json()["status"] == "MATCHED" and reconcile.json()["is_flat"] is True
    response = api_owner_a.post(f"/api/bots/{bot.id}/unkill", {"reason": "flat, resuming"}, format="json")
    assert response.status_code == 200 and response.json()["killed"] is False


def test_unkill_with_an_explicit_positions_decision(api_owner_a, make_bot, tenant_a):
    bot = make_bot()
    api_owner_a.post(f"/api/bots/{bot.id}/kill", {"reason": "drill"}, format="json")
    present_second_factor(api_owner_a)
    response = api_owner_a.post(
        f"/api/bots/{bot.id}/unkill",
        {"reason": "positions are intended", "positions_decision": "keep_positions"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["killed"] is False
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.filter(action="bot.unkill").get()
    assert event.after_state["positions_decision"] == "keep_positions"


def test_tenant_kill_refuses_starts_until_an_owner_unkills(api_operator_a, api_owner_a, make_bot, tenant_a):
    bot = make_bot()
    assert api_operator_a.post("/api/tenant/kill", {"reason": "bad fills"}, format="json").json()["killed"] is True
    assert_error(api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 409, "TENANT_KILLED")
    assert_error(api_operator_a.post("/api/tenant/unkill", {"reason": "ok"}, format="json"), 403, "PERMISSION_DENIED")
    assert_error(api_owner_a.post("/api/tenant/unkill", {"reason": "ok"}, format="json"), 403, "STEP_UP_REQUIRED")
    present_second_factor(api_owner_a)
    assert api_owner_a.post("/api/tenant/unkill", {"reason": "fixed"}, format="json").json()["killed"] is False
    assert api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json").status_code == 201
    with tenancy.tenant_context(tenant_a.id):
        assert CancelRequest.objects.get().scope == "TENANT"


def test_tenant_kill_does_not_touch_another_tenant(api_owner_a, api_owner_b, make_bot, tenant_b, owner_b):
    api_owner_a.post("/api/tenant/kill", {"reason": "drill"}, format="json")
    bot_b = make_bot(name="b", tenant=tenant_b, actor=owner_b)
    assert api_owner_b.post("/api/runners/start", {"bot_id": bot_b.id}, format="json").status_code == 201


def test_system_kill_is_superuser_only_and_stops_every_tenant(api_owner_a, api_owner_b, make_bot, tenant_b, owner_b):
    assert_error(api_owner_a.post("/api/system/kill", {"reason": "x"}, format="json"), 403, "PERMISSION_DENIED")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "correct horse battery staple")
    api_root = client_for(root)
    response = api_root.post("/api/system/kill", {"reason": "exchange outage"}, format="json")
    assert response.status_code == 200 and response.json()["killed"] is True
    bot_b = make_bot(name="b", tenant=tenant_b, actor=owner_b)
    assert_error(api_owner_b.post("/api/runners/start", {"bot_id": bot_b.id}, format="json"), 409, "SYSTEM_KILLED")
    assert AuditEvent.unscoped.filter(action="system.kill", tenant__isnull=True).count() == 1
    assert_error(api_root.post("/api/system/unkill", {"reason": "over"}, format="json"), 403, "STEP_UP_REQUIRED")
    present_second_factor(api_root, root)
    assert api_root.post("/api/system/unkill", {"reason": "over"}, format="json").json()["killed"] is False
    assert api_owner_b.post("/api/runners/start", {"bot_id": bot_b.id}, format="json").status_code == 201


# --- reconcile ------------------------------------------------------------------------------------------------


def test_reconcile_without_a_position_source_is_an_honest_failure(api_operator_a, make_bot, tenant_a):
    bot = make_bot()
    with tenancy.tenant_context(tenant_a.id):  # a venue whose adapter is no longer installed: nobody can answer
        Bot.objects.filter(pk=bot.pk).update(venue="retired-broker")
    body = assert_error(
        api_operator_a.post(f"/api/bots/{bot.id}/reconcile", format="json"), 409, "RECONCILE_SOURCE_MISSING"
    )
    assert body["details"] == {"venue": "retired-broker"}
    with tenancy.tenant_context(tenant_a.id):
        assert Reconciliation.objects.count() == 0


def test_reconcile_mismatch_flags_the_bot_and_blocks_starts_until_it_matches(api_operator_a, make_bot, tenant_a):
    bot = make_bot(stage=Stage.PAPER)
    fill_on_the_sim_venue(bot, quantity="2")
    with tenancy.tenant_context(tenant_a.id):  # our book drifts from what the sim venue filled
        StrategyPosition.objects.filter(bot=bot).update(quantity=1)
    body = api_operator_a.post(f"/api/bots/{bot.id}/reconcile", format="json").json()
    assert body["status"] == "MISMATCH" and body["differences"] == {"ES": {"internal": 1.0, "venue": 2.0}}
    assert_error(
        api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 409, "RECONCILE_MISMATCH"
    )
    with tenancy.tenant_context(tenant_a.id):
        StrategyPosition.objects.filter(bot=bot).update(quantity=2)
    body = api_operator_a.post(f"/api/bots/{bot.id}/reconcile", format="json").json()
    assert body["status"] == "MATCHED" and body["is_flat"] is False
    assert api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json").status_code == 201


# --- starter pack ---------------------------------------------------------------------------------------------


def test_starter_pack_is_idempotent_and_its_bots_can_start(api_operator_a, tenant_a):
    first = api_operator_a.post("/api/bots/starter-pack", format="json")
    assert first.status_code == 201
    assert len(first.json()["created"]) == 3 and first.json()["existing"] == []
    assert {bot["stage"] for bot in first.json()["created"]} == {"LAB"}
    second = api_operator_a.post("/api/bots/starter-pack", format="json")
    assert second.status_code == 200
    assert second.json()["created"] == [] and len(second.json()["existing"]) == 3
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.count() == 3
    for bot in first.json()["created"]:
        assert api_operator_a.post("/api/runners/start", {"bot_id": bot["id"]}, format="json").status_code == 201


def test_strategies_endpoint_lists_schemas(api_viewer_a):
    body = api_viewer_a.get("/api/strategies").json()
    assert [s["name"] for s in body] == [
        "donchian_breakout",
        "funding_arbitrage",
        "ma_crossover",
        "spot_arbitrage",
        "zscore_mean_reversion",
    ]
    assert {p["name"] for p in body[2]["parameters"]} == {"fast", "slow", "size", "allow_short"}
    assert (body[1]["kind"], body[1]["market"], body[3]["kind"], body[3]["market"]) == (
        "quotes",
        "funding",
        "quotes",
        "spot",
    )
    assert {p["name"] for p in body[1]["parameters"]} == {
        "entry_threshold_bps",
        "holding_hours",
        "exit_funding_bps",
        "max_holding_hours",
        "max_notional",
        "allow_reverse",
        "flatten_on_leg_failure",
    }


def test_no_runner_row_exists_after_a_refused_start(api_operator_a, make_bot, tenant_a):
    bot = make_bot(venue="tradovate", data_source="databento", stage=Stage.LIVE)
    body = assert_error(
        api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 409, "INTEGRATION_KEY_MISSING"
    )
    blockers = body["details"]["blockers"]
    assert {b["provider"] for b in blockers} == {"tradovate", "databento"}
    assert all(b["code"] == "INTEGRATION_KEY_MISSING" and b["missing_env_vars"] for b in blockers)
    assert "TRADOVATE_USERNAME" in next(b for b in blockers if b["provider"] == "tradovate")["missing_env_vars"]
    with tenancy.tenant_context(tenant_a.id):
        assert not Runner.objects.filter(bot=bot).exists()


def test_a_bot_names_a_known_venue_and_data_source(api_operator_a):
    response = api_operator_a.post(
        "/api/bots",
        {"name": "x", "strategy": "ma_crossover", "instruments": ["ES"], "venue": "ibkr", "data_source": "bloomberg"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"venue", "data_source"}


def test_a_bot_before_live_trades_on_sim_and_needs_only_its_data_keys(api_operator_a, make_bot):
    bot = make_bot(name="paper-on-tradovate", venue="tradovate", data_source="databento", stage=Stage.PAPER)
    body = assert_error(
        api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 409, "INTEGRATION_KEY_MISSING"
    )
    assert [b["provider"] for b in body["details"]["blockers"]] == ["databento"]
