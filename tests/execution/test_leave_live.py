"""Leaving LIVE is one service (issue 13, defect 2): an operator's demotion or retirement, the watchdog's demotion
and a configuration change of a LIVE bot each cancel its open orders through the OMS, record what the venue
still holds, open an UNMANAGED_LIVE_POSITION incident and alert when it is not flat, and block going LIVE again
until the operator resolves it (flatten or accept_venue). On the sim venue, through the real OMS."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Q
from django.utils import timezone

from bots import services as bot_services
from oversight.reconcile import bot_reconcile_resolve
from oversight.gates import promotion_gates
from bots.models import Bot, CancelRequest, Reconciliation, Runner, Stage
from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.orders import cancels, oms
from execution.orders.intents import submit_intent
from execution.models import Order, RiskIncident, StrategyPosition, TradeIntent
from execution.orders.paper_venue import match_working_orders
from tests.conftest import present_second_factor
from tests.execution.conftest import T0, buy
from tests.execution.helpers import store_bars

pytestmark = pytest.mark.django_db


def _open_long_and_a_working_order(bot, es_bars):
    """While PAPER: 3 ES bought and filled on sim, and a limit buy far below the market left working."""
    submit_intent(bot=bot, legs=[buy("3")], idempotency_key="open", source="api", bar_ts=T0)
    oms.process_pending_intents()
    match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
    working = submit_intent(
        bot=bot,
        legs=[buy("1", order_type="limit", limit_price=Decimal("50"))],
        idempotency_key="resting",
        source="api",
        bar_ts=T0,
    ).intent
    oms.process_pending_intents()
    return Order.objects.get(intent=working)


def _live(bot) -> Bot:
    Bot.objects.filter(pk=bot.pk).update(stage=Stage.LIVE, autonomy_tier="T3")
    bot.refresh_from_db()
    return bot


def _gate(bot, actor):
    return next(g for g in promotion_gates(bot, Stage.LIVE, actor=actor) if g.gate == "live_exit_resolved")


@pytest.fixture
def live_holder(tenant_a, es_bars, trading_bot):
    """A LIVE bot on sim holding 3 ES with one order working."""
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        order = _open_long_and_a_working_order(bot, es_bars)
        assert order.status == Order.Status.WORKING
        _live(bot)
    return bot, order


def test_an_operators_demotion_cancels_records_the_position_opens_an_incident_and_alerts(
    tenant_a, owner_a, api_owner_a, live_holder, json_log_lines, django_capture_on_commit_callbacks
):
    bot, order = live_holder
    with django_capture_on_commit_callbacks(execute=True):
        response = api_owner_a.post(f"/api/bots/{bot.id}/demote", {"to": "PAPER", "reason": "pause"}, format="json")
    assert response.status_code == 200, response.content
    with tenancy.tenant_context(tenant_a.id):
        order.refresh_from_db()
        cancel = CancelRequest.objects.get(bot=bot)
        report = Reconciliation.objects.get(bot=bot, purpose=Reconciliation.Purpose.LIVE_EXIT)
        incident = RiskIncident.objects.get(bot=bot)
        ours = (
            Q(resource_type="bot", resource_id=str(bot.id))
            | Q(resource_type="cancel_request", resource_id=str(cancel.id))
            | Q(resource_type="risk_incident", resource_id=str(incident.id))
        )
        actions = list(
            AuditEvent.objects.filter(ours)
            .exclude(action="bot.create")
            .order_by("id")
            .values_list("action", "trace_id")
        )
    assert order.status == Order.Status.CANCELLED  # today: left working at the venue
    assert (cancel.purpose, cancel.status, cancel.result["orders_cancelled"]) == ("leave_live", "DONE", 1)
    assert cancel.detail == {
        "venue": "sim",
        "instruments": ["ES"],
        "from_stage": "LIVE",
        "to_stage": "PAPER",
        "reason": "pause",
    }
    assert report.status == "MISMATCH" and report.differences == {"ES": {"internal": 3.0, "venue": 3.0}}
    assert (incident.kind, incident.status) == ("UNMANAGED_LIVE_POSITION", "OPEN")
    assert incident.details["reconciliation_id"] == report.id and incident.details["held"] == report.differences
    assert incident.details["cancelled"] == {"orders_cancelled": 1, "intents_cancelled": 1}
    assert [a for a, _ in actions] == [
        "bot.leave_live",
        "bot.demote",
        "cancel_request.process",
        "bot.live_exit",
        "risk_incident.open",
    ]
    leave_trace = response["X-Trace-Id"]
    assert [t for _, t in actions[:2]] == [leave_trace, leave_trace] and cancel.trace_id == leave_trace
    assert len({t for _, t in actions[2:]}) == 1  # the OMS's run: one trace for its cancels, report and incident
    assert incident.details["leave_trace_id"] == leave_trace and incident.trace_id == actions[2][1]
    [alert] = [line for line in json_log_lines() if line.get("alert")]
    assert alert["alert"] == "bot.unmanaged_live_position" and alert["incident_id"] == incident.id
    assert alert["held"] == {"ES": {"internal": 3.0, "venue": 3.0}} and alert["leave_trace_id"] == leave_trace


def test_a_bot_that_left_a_position_cannot_go_live_until_a_flatten_closes_it(
    tenant_a, owner_a, api_owner_a, api_operator_a, es_bars, live_holder, django_capture_on_commit_callbacks
):
    bot, _ = live_holder
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, actor=owner_a, to_stage=Stage.PAPER, reason="pause")
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        gate = _gate(bot, owner_a)
    assert gate.passed is False and "UNMANAGED_LIVE_POSITION" in gate.message and "ES 3" in gate.message
    present_second_factor(api_owner_a)  # promotion to LIVE needs a fresh second factor
    refused = api_owner_a.post(f"/api/bots/{bot.id}/promote", {"to": "LIVE"}, format="json").json()
    assert "live_exit_resolved" in [g["gate"] for g in refused["details"]["gates"]]

    response = api_operator_a.post(
        f"/api/bots/{bot.id}/reconcile/resolve", {"action": "flatten", "reason": "close what LIVE left"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["resolved"]["purpose"] == "live_exit"
    with tenancy.tenant_context(tenant_a.id):
        [close] = Order.objects.filter(intent__source=TradeIntent.Source.RECONCILE)
        incident = RiskIncident.objects.get(bot=bot)
        assert (close.side, close.quantity, close.venue) == ("sell", 3, "sim")
        assert incident.status == "RESOLVED" and "flatten" in incident.resolution_note
        assert _gate(bot, owner_a).passed is True
    next_bar = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    store_bars(es_bars, next_bar, 1)
    with tenancy.tenant_context(tenant_a.id):
        match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=next_bar)
        assert StrategyPosition.objects.get(bot=bot).quantity == 0


def test_accept_venue_keeps_the_position_and_lets_the_bot_go_live_again(
    tenant_a, owner_a, live_holder, django_capture_on_commit_callbacks
):
    bot, _ = live_holder
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, actor=owner_a, to_stage=Stage.RETIRED, reason="done with it")
    with tenancy.tenant_context(tenant_a.id):
        assert RiskIncident.objects.get(bot=bot).details["to_stage"] == "RETIRED"
        report, _ = bot_reconcile_resolve(
            bot_id=bot.id, action="accept_venue", reason="I will manage it by hand", actor=owner_a
        )
        bot.refresh_from_db()
        assert report.resolution == "accept_venue" and report.resolution_detail["incidents_resolved"]
        assert RiskIncident.objects.get(bot=bot).status == "RESOLVED"
        assert StrategyPosition.objects.get(bot=bot).quantity == 3
        assert _gate(bot, owner_a).passed is True
        assert not Order.objects.filter(intent__source=TradeIntent.Source.RECONCILE).exists()


def test_a_bot_retired_from_live_can_still_flatten_what_it_left(
    tenant_a, owner_a, live_holder, django_capture_on_commit_callbacks
):
    bot, _ = live_holder
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, actor=owner_a, to_stage=Stage.RETIRED, reason="done with it")
    with tenancy.tenant_context(tenant_a.id):
        report, _ = bot_reconcile_resolve(bot_id=bot.id, action="flatten", reason="close it", actor=owner_a)
        [close] = Order.objects.filter(intent__source=TradeIntent.Source.RECONCILE)
        assert report.resolution == "flatten" and (close.side, close.quantity) == ("sell", 3)
        assert RiskIncident.objects.get(bot=bot).status == "RESOLVED"


def test_a_flat_bot_leaves_live_with_a_matched_report_and_no_incident(
    tenant_a, owner_a, trading_bot, es_bars, django_capture_on_commit_callbacks
):
    bot = trading_bot()
    with tenancy.tenant_context(tenant_a.id):
        _live(bot)
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, actor=owner_a, to_stage=Stage.PAPER, reason="pause")
    with tenancy.tenant_context(tenant_a.id):
        report = Reconciliation.objects.get(bot=bot, purpose=Reconciliation.Purpose.LIVE_EXIT)
        assert (report.status, report.is_flat) == ("MATCHED", True)
        assert not RiskIncident.objects.filter(bot=bot).exists()
        bot.refresh_from_db()
        assert _gate(bot, owner_a).passed is True


def test_a_configuration_change_of_a_live_bot_leaves_live_for_what_it_traded(
    tenant_a, owner_a, api_owner_a, live_holder, django_capture_on_commit_callbacks
):
    bot, order = live_holder
    with django_capture_on_commit_callbacks(execute=True):
        response = api_owner_a.patch(f"/api/bots/{bot.id}", {"parameters": {"fast": 3, "slow": 10}}, format="json")
    assert response.status_code == 200, response.content
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        order.refresh_from_db()
        cancel = CancelRequest.objects.get(bot=bot)
        incident = RiskIncident.objects.get(bot=bot)
    assert bot.stage == Stage.LAB and order.status == Order.Status.CANCELLED
    assert cancel.detail["to_stage"] == "LAB" and cancel.detail["reason"] == "configuration changed"
    assert incident.kind == "UNMANAGED_LIVE_POSITION" and incident.details["held"]["ES"]["venue"] == 3.0


def test_the_watchdogs_demotion_of_a_failed_live_runner_leaves_live_the_same_way(
    tenant_a, owner_a, settings, live_holder, django_capture_on_commit_callbacks
):
    bot, order = live_holder
    settings.RUNNER_MAX_RESTARTS = 0
    with tenancy.tenant_context(tenant_a.id):
        Runner.objects.create(
            bot=bot,
            status=Runner.Status.STALE,
            started_by="test",
            started_at=T0,
            last_heartbeat_at=T0,
            trace_id="t-runner",
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert bot_services.watchdog_sweep()[tenant_a.id]["failed"] == 1
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        order.refresh_from_db()
        cancel = CancelRequest.objects.get(bot=bot)
        incident = RiskIncident.objects.get(bot=bot)
    assert bot.stage == Stage.PAPER and order.status == Order.Status.CANCELLED
    assert cancel.requested_by == "watchdog" and cancel.status == "DONE"
    assert incident.kind == "UNMANAGED_LIVE_POSITION"


def test_until_the_oms_has_accounted_for_the_exit_the_bot_cannot_go_live_and_the_sweep_finishes_it_once(
    tenant_a, owner_a, live_holder
):
    bot, order = live_holder
    with tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, actor=owner_a, to_stage=Stage.PAPER, reason="pause")  # no commit
        bot.refresh_from_db()
        gate = _gate(bot, owner_a)
        assert gate.passed is False and "not accounted for yet" in gate.message
        assert cancels.process_pending_cancel_requests() == 1
        assert cancels.process_pending_cancel_requests() == 0  # processed once
        order.refresh_from_db()
        assert order.status == Order.Status.CANCELLED
        assert RiskIncident.objects.filter(bot=bot, kind="UNMANAGED_LIVE_POSITION").count() == 1
        assert Reconciliation.objects.filter(bot=bot, purpose="live_exit").count() == 1
        assert "UNMANAGED_LIVE_POSITION" in _gate(bot, owner_a).message


def test_demoting_a_paper_bot_does_not_touch_its_orders(
    tenant_a, owner_a, trading_bot, es_bars, django_capture_on_commit_callbacks
):
    bot = trading_bot(stage=Stage.PAPER)
    with tenancy.tenant_context(tenant_a.id):
        order = _open_long_and_a_working_order(bot, es_bars)
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, actor=owner_a, to_stage=Stage.BACKTESTED, reason="rework")
    with tenancy.tenant_context(tenant_a.id):
        order.refresh_from_db()
        assert order.status == Order.Status.WORKING
        assert not CancelRequest.objects.filter(bot=bot).exists()


def test_the_console_says_what_the_bot_left_at_its_venue(
    client, settings, tenant_a, owner_a, live_holder, django_capture_on_commit_callbacks
):
    from django.contrib.auth import get_user_model

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "correct horse b"))
    bot, _ = live_holder
    with django_capture_on_commit_callbacks(execute=True), tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, actor=owner_a, to_stage=Stage.PAPER, reason="pause")
    page = client.get(f"/admin/bots/bot/{bot.id}/change/")
    assert page.status_code == 200
    assert b"UNMANAGED_LIVE_POSITION: sim still holds ES 3" in page.content
    incidents = client.get("/admin/execution/riskincident/?kind=UNMANAGED_LIVE_POSITION")
    assert incidents.status_code == 200 and b"UNMANAGED_LIVE_POSITION" in incidents.content
