"""The circuit breakers: a drawdown beyond the bot's limit kills it, opens an incident and alerts; so do too many
consecutive tick errors. No bar, no mark, no verdict; a second run changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bots.models import Bot, CancelRequest
from controlplane import tenancy
from controlplane.models import AuditEvent, Tenant
from execution.orders import oms
from execution.marketdata.barfiles import BarRow
from execution.risk.breakers import drawdown_sweep, drawdown_sweep_tenant
from execution.orders.intents import submit_intent
from execution.models import EquityWatermark, RiskIncident
from execution.marketdata.services import bars_ingest
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy
from tests.execution.test_tick import btc, running_bot, tick  # noqa: F401 (btc is a fixture)

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def _long_one_es(bot, es):
    """Buy 1 ES decided on bar 0, filled at bar 1's open (101): no costs in the default sim fill model."""
    with tenancy.tenant_context(bot.tenant_id):
        submit_intent(bot=bot, legs=[buy("1")], idempotency_key="dd-1", source="tick", bar_ts=T0)
        oms.process_pending_intents()
        assert match_working_orders(instrument=es, timeframe="1m", bar_ts=T0 + MINUTE) == 1


def _falling_bar(es, minute: int, close: str):
    price = Decimal(close)
    bars_ingest(
        instrument=es,
        timeframe="1m",
        source="databento",
        actor_name="test",
        rows=[BarRow(T0 + minute * MINUTE, price + 1, price + 1, price, price, Decimal(5), where="row 0")],
    )


def _sweep(tenant, minutes: int):
    with tenancy.tenant_context(tenant.id):
        return drawdown_sweep_tenant(now=T0 + minutes * MINUTE)


def _alerts(json_log_lines):
    return [line for line in json_log_lines() if line.get("alert")]


def test_a_drawdown_past_the_limit_kills_opens_an_incident_and_alerts(
    tenant_a, es_bars, trading_bot, json_log_lines, django_capture_on_commit_callbacks
):
    bot = trading_bot(risk_limits={"max_drawdown": "500"})
    _long_one_es(bot, es_bars)
    assert _sweep(tenant_a, 10) == {"within_limit": 1}  # bar 9 closes at 109.5: equity (109.5 - 101) x 50 = 425
    with tenancy.tenant_context(tenant_a.id):
        mark = EquityWatermark.objects.get(bot=bot)
    assert (mark.equity, mark.peak_equity, mark.drawdown) == (Decimal(425), Decimal(425), Decimal(0))
    assert mark.marks["ES"]["mark"] == "109.500000000"

    _falling_bar(es_bars, 10, "96")  # equity (96 - 101) x 50 = -250: 675 below the peak of 425
    with django_capture_on_commit_callbacks(execute=True):
        assert _sweep(tenant_a, 11) == {"tripped": 1}
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        incident = RiskIncident.objects.get()
        kill = AuditEvent.objects.get(action="bot.kill")
        assert CancelRequest.objects.filter(bot=bot).count() == 1
    assert bot.killed and bot.killed_by == "circuit_breaker"
    assert "drawdown 675" in bot.kill_reason and "max_drawdown 500" in bot.kill_reason
    assert kill.actor == "circuit_breaker"
    assert (incident.kind, incident.status, incident.bot_id) == ("circuit_breaker", "OPEN", bot.id)
    assert incident.details["trigger"] == "max_drawdown"
    assert Decimal(incident.details["drawdown"]) == 675 and Decimal(incident.details["peak_equity"]) == 425
    (alert,) = _alerts(json_log_lines)
    assert alert["level"] == "error" and alert["alert"] == "circuit_breaker.tripped"
    assert alert["bot_id"] == bot.id and alert["incident_id"] == incident.id and alert["trace_id"]
    assert alert["values"]["max_drawdown"] == "500"


def test_a_drawdown_within_the_limit_moves_the_marks_and_kills_nothing(tenant_a, es_bars, trading_bot):
    bot = trading_bot(risk_limits={"max_drawdown": "1000"})
    _long_one_es(bot, es_bars)
    _sweep(tenant_a, 10)
    _falling_bar(es_bars, 10, "96")
    assert _sweep(tenant_a, 11) == {"within_limit": 1}
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        mark = EquityWatermark.objects.get(bot=bot)
        assert not bot.killed and not RiskIncident.objects.exists()
    assert (mark.equity, mark.peak_equity, mark.drawdown) == (Decimal(-250), Decimal(425), Decimal(675))


def test_no_bar_to_mark_an_open_position_means_no_verdict_and_says_so(tenant_a, es_bars, trading_bot, json_log_lines):
    bot = trading_bot(risk_limits={"max_drawdown": "1"})
    _long_one_es(bot, es_bars)
    assert _sweep(tenant_a, 0) == {"no_mark": 1}  # as of T0 no ES bar has closed yet
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        assert not bot.killed and not EquityWatermark.objects.exists() and not RiskIncident.objects.exists()
    (line,) = [line for line in json_log_lines() if "no bar to mark" in line["event"]]
    assert line["level"] == "warning" and line["bot_id"] == bot.id and line["unmarked"] == ["ES"]


def test_a_stale_mark_neither_trips_nor_passes_the_breaker_and_is_reported_as_stale_data(
    tenant_a, es_bars, trading_bot, json_log_lines
):
    """Issue 13: the breaker used to mark at the latest bar however old, and trip (or pass) on that price."""
    bot = trading_bot(risk_limits={"max_drawdown": "500"})
    _long_one_es(bot, es_bars)
    _falling_bar(es_bars, 10, "96")  # 675 below the entry's first mark, were it measured
    later = 3 * 60  # three open hours after the last bar closed: far past the 1m freshness limit of 60 s
    assert _sweep(tenant_a, later) == {"stale_mark": 1}
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        assert not bot.killed and not EquityWatermark.objects.exists() and not RiskIncident.objects.exists()
    (line,) = [line for line in json_log_lines() if "mark is stale" in line["event"]]
    assert line["level"] == "warning" and line["error_code"] == "DATA_STALE" and line["stale"] == ["ES"]
    assert line["marks"]["ES"]["stale"] is True and line["marks"]["ES"]["bar_ts"] == (T0 + 10 * MINUTE).isoformat()
    assert line["book"] == "paper"

    # Fresh again (a bar that just closed): the breaker measures; the first fresh mark sets the peak.
    _falling_bar(es_bars, later - 1, "96")
    assert _sweep(tenant_a, later) == {"within_limit": 1}
    with tenancy.tenant_context(tenant_a.id):
        mark = EquityWatermark.objects.get(bot=bot)
    assert mark.book == "paper" and mark.equity == Decimal(-250) and mark.marks["ES"]["stale"] is False


def test_a_second_run_changes_nothing(tenant_a, es_bars, trading_bot, django_capture_on_commit_callbacks):
    bot = trading_bot(risk_limits={"max_drawdown": "500"})
    _long_one_es(bot, es_bars)
    _sweep(tenant_a, 10)
    _falling_bar(es_bars, 10, "96")
    with django_capture_on_commit_callbacks(execute=True):
        assert drawdown_sweep(now=T0 + 11 * MINUTE) == {tenant_a.id: {"tripped": 1}}
        assert drawdown_sweep(now=T0 + 11 * MINUTE) == {}
    with tenancy.tenant_context(tenant_a.id):
        assert RiskIncident.objects.count() == 1 and CancelRequest.objects.filter(bot=bot).count() == 1
        assert AuditEvent.objects.filter(action="bot.kill").count() == 1
        assert EquityWatermark.objects.get(bot=bot).tripped_at is not None


def test_the_drawdown_breaker_still_guards_a_suspended_tenant(
    tenant_a, es_bars, trading_bot, django_capture_on_commit_callbacks
):
    """Suspension stops new work, never the work that makes things safe: the breaker kills and cancels."""
    bot = trading_bot(risk_limits={"max_drawdown": "500"})
    _long_one_es(bot, es_bars)
    _sweep(tenant_a, 10)
    Tenant.objects.filter(pk=tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
    _falling_bar(es_bars, 10, "96")
    with django_capture_on_commit_callbacks(execute=True):
        assert drawdown_sweep(now=T0 + 11 * MINUTE) == {tenant_a.id: {"tripped": 1}}
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
    assert bot.killed and bot.killed_by == "circuit_breaker"


def test_after_an_unkill_the_peak_starts_again_from_the_current_equity(tenant_a, owner_a, es_bars, trading_bot):
    bot = trading_bot(risk_limits={"max_drawdown": "500"})
    _long_one_es(bot, es_bars)
    _sweep(tenant_a, 10)
    _falling_bar(es_bars, 10, "96")
    assert _sweep(tenant_a, 11) == {"tripped": 1}
    from oversight.rearm import bot_rearm

    with tenancy.tenant_context(tenant_a.id):
        bot_rearm(bot_id=bot.id, actor=owner_a, reason="accepted the loss", positions_decision="keep_positions")
    assert _sweep(tenant_a, 11) == {"within_limit": 1}
    with tenancy.tenant_context(tenant_a.id):
        mark = EquityWatermark.objects.get(bot=bot)
        assert (mark.peak_equity, mark.drawdown, mark.tripped_at) == (Decimal(-250), Decimal(0), None)
        assert not Bot.objects.get(pk=bot.pk).killed


def test_bots_without_a_drawdown_limit_are_not_measured(tenant_a, es_bars, trading_bot):
    bot = trading_bot(risk_limits={"max_position": 5})
    _long_one_es(bot, es_bars)
    assert _sweep(tenant_a, 10) == {}
    with tenancy.tenant_context(tenant_a.id):
        assert not EquityWatermark.objects.exists()


def test_consecutive_tick_errors_trip_the_same_breaker_with_an_incident_and_an_alert(
    btc, tenant_a, owner_a, settings, json_log_lines, django_capture_on_commit_callbacks
):  # noqa: F811
    settings.TICK_MAX_CONSECUTIVE_ERRORS = 2
    bot = running_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=bot.pk).update(parameters={"fast": 2})  # corrupted outside the services
    with django_capture_on_commit_callbacks(execute=True):
        tick(btc, 9)
        tick(btc, 10)
        tick(btc, 11)
    with tenancy.tenant_context(tenant_a.id):
        incident = RiskIncident.objects.get()
    assert incident.kind == "circuit_breaker" and incident.bot_id == bot.id
    assert incident.details["trigger"] == "consecutive_errors" and incident.details["consecutive_errors"] == 2
    (alert,) = _alerts(json_log_lines)
    assert alert["alert"] == "circuit_breaker.tripped" and alert["values"]["limit"] == 2


def test_every_beat_entry_expires_and_the_breaker_runs_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["execution-drawdown-breakers"]
    assert entry["task"] == "execution.drawdown_breakers" and entry["schedule"] == 60
    assert 0 < entry["options"]["expires"] < 60


def test_max_drawdown_is_a_validated_risk_limit(api_operator_a, tenant_a):
    from bots.risk_limits import InvalidRiskLimits
    from execution.risk.state import limits_from_json

    assert limits_from_json({"max_drawdown": "250.5"}).max_drawdown == Decimal("250.5")
    with pytest.raises(InvalidRiskLimits, match="max_drawdown"):
        limits_from_json({"max_drawdown": -1})
    body = {"name": "dd", "strategy": "ma_crossover", "parameters": {"fast": 5, "slow": 20}, "instruments": ["ES"]}
    refused = api_operator_a.post("/api/bots", {**body, "risk_limits": {"max_drawdown": "lots"}}, format="json")
    assert refused.status_code == 400 and refused.json()["error_code"] == "VALIDATION_ERROR"
    assert "max_drawdown" in refused.json()["details"]["risk_limits"][0]
    created = api_operator_a.post("/api/bots", {**body, "risk_limits": {"max_drawdown": 500}}, format="json")
    assert created.status_code == 201 and created.json()["risk_limits"] == {"max_drawdown": 500}
    patched = api_operator_a.patch(
        f"/api/bots/{created.json()['id']}", {"risk_limits": {"max_drawdown": -5}}, format="json"
    )
    assert patched.status_code == 400 and "max_drawdown" in patched.json()["details"]["risk_limits"][0]


def test_a_sweep_reads_each_instruments_mark_once_however_many_bots_hold_it(tenant_a, es_bars, trading_bot):
    def bar_reads(bots: int) -> int:
        with tenancy.tenant_context(tenant_a.id):
            Bot.objects.update(risk_limits={})  # only the bots made below carry a limit, so only they are swept
        for n in range(bots):
            bot = trading_bot(name=f"dd-{bots}-{n}", risk_limits={"max_drawdown": "500"})
            with tenancy.tenant_context(tenant_a.id):
                submit_intent(bot=bot, legs=[buy("1")], idempotency_key=f"dd-{bots}-{n}", source="tick", bar_ts=T0)
                oms.process_pending_intents()
        with tenancy.tenant_context(tenant_a.id):
            match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + MINUTE)
        with CaptureQueriesContext(connection) as captured:
            counts = _sweep(tenant_a, 10)
        assert counts == {"within_limit": bots}
        return sum('"execution_bar"' in query["sql"] for query in captured.captured_queries)

    one = bar_reads(1)
    assert one > 0 and bar_reads(3) == one


def test_a_live_bot_at_t2_trips_at_its_max_drawdown_scaled_by_the_autonomy_factor(
    tenant_a, es_bars, trading_bot, settings, django_capture_on_commit_callbacks
):
    settings.AUTONOMY_T2_LIMIT_FACTOR = 0.25
    bot = trading_bot(risk_limits={"max_drawdown": "500"})
    _long_one_es(bot, es_bars)
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=bot.pk).update(stage="LIVE", autonomy_tier="T2")
    assert _sweep(tenant_a, 10) == {"within_limit": 1}  # equity 425, the peak
    _falling_bar(es_bars, 10, "103")  # equity (103 - 101) x 50 = 100: 325 below the peak, within 500, past 125
    with django_capture_on_commit_callbacks(execute=True):
        assert _sweep(tenant_a, 11) == {"tripped": 1}
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
    assert bot.killed and "max_drawdown 125" in bot.kill_reason
