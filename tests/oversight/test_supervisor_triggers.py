"""Each trigger of the supervisor breaches past its threshold and stays quiet below it; unknowns are written down,
and breach for a LIVE bot on a fail-closed trigger."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bots.models import Reconciliation
from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.models import EquityWatermark
from oversight.models import SupervisorBreach, SupervisorRun
from oversight.supervisor.sweep import supervisor_sweep
from tests.execution.helpers import store_bars
from tests.oversight.conftest import T0, add_runner, breaches, incidents, state_of
from traces.models import ProfitVariables

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def _bot_breach(bot, trigger):
    found = [b for b in breaches(bot, trigger) if b.cleared_at is None]
    return found[0] if found else None


def test_tick_errors_past_the_threshold_halt_the_bot_with_incident_audit_and_alert(
    make_bot, json_log_lines, django_capture_on_commit_callbacks
):
    erring, fine = make_bot("erring"), make_bot("fine")
    add_runner(erring, errors=3)
    add_runner(fine, errors=2)
    with django_capture_on_commit_callbacks(execute=True):
        supervisor_sweep()
    assert state_of(erring) == "HALTED" and state_of(fine) == "ACTIVE"
    breach = _bot_breach(erring, "tick_errors")
    assert (breach.step, breach.value, breach.threshold) == (SupervisorBreach.Step.HALTED, 3, 3)
    assert _bot_breach(fine, "tick_errors") is None
    [incident] = incidents(erring, "tick_errors")
    assert incident.details["trigger"] == "tick_errors" and incident.details["step"] == "Halted"
    assert (incident.details["value"], incident.details["threshold"]) == (3, 3)
    with tenancy.tenant_context(erring.tenant_id):
        audit = AuditEvent.objects.get(action="supervisor.action", after_state__trigger="tick_errors")
    assert (
        audit.actor == "supervisor"
        and audit.after_state["trigger"] == "tick_errors"
        and audit.after_state["value"] == 3
    )
    alerts = [line for line in json_log_lines() if line.get("alert") == "supervisor.action"]
    alerts = [a for a in alerts if a["trigger"] != "data_stale"]  # these runners have no bars at all: a warning
    assert [(a["bot_id"], a["trigger"], a["step"], a["value"], a["threshold"]) for a in alerts] == [
        (erring.id, "tick_errors", "Halted", 3, 3)
    ]


def test_drawdown_reads_the_breakers_watermark_and_reduces_before_the_breaker_kills(make_bot):
    deep = make_bot("deep", risk_limits={"max_drawdown": "500"})
    shallow = make_bot("shallow", risk_limits={"max_drawdown": "500"})
    now = timezone.now()
    with tenancy.tenant_context(deep.tenant_id):
        for bot, equity in ((deep, "700"), (shallow, "800")):
            EquityWatermark.objects.create(
                bot=bot, book="paper", peak_equity=Decimal(1000), peak_at=now, equity=Decimal(equity), marked_at=now
            )
    supervisor_sweep()
    breach = _bot_breach(deep, "drawdown")
    assert breach.step == SupervisorBreach.Step.REDUCE_ONLY
    assert Decimal(breach.value) == 300 and Decimal(breach.threshold) == 250  # 0.5 x max_drawdown
    assert state_of(deep) == "REDUCE_ONLY" and state_of(shallow) == "ACTIVE"
    assert _bot_breach(shallow, "drawdown") is None


def test_daily_loss_past_its_share_of_max_daily_loss_reduces_only(make_bot):
    losing, winning = make_bot("losing", risk_limits={"max_daily_loss": "100"}), make_bot("winning")
    today = timezone.now().date()
    with tenancy.tenant_context(losing.tenant_id):
        ProfitVariables.objects.create(bot_id=losing.id, book="paper", day=today, pnl=Decimal("-85"))
        ProfitVariables.objects.create(bot_id=winning.id, book="paper", day=today, pnl=Decimal("-85"))
    supervisor_sweep()
    breach = _bot_breach(losing, "daily_loss")
    assert Decimal(breach.value) == 85 and Decimal(breach.threshold) == 80
    assert state_of(losing) == "REDUCE_ONLY"
    assert _bot_breach(winning, "daily_loss") is None  # no max_daily_loss: not applicable


def test_reconcile_mismatch_unresolved_halts_a_live_bot_and_a_matched_one_does_not(make_bot):
    mismatched, matched = make_bot("mm", stage="LIVE", tier="T3"), make_bot("ok", stage="LIVE", tier="T3")
    with tenancy.tenant_context(mismatched.tenant_id):
        for bot, status in ((mismatched, "MISMATCH"), (matched, "MATCHED")):
            Reconciliation.objects.create(
                bot=bot, status=status, venue="sim", book="live", is_flat=False, requested_by="t", trace_id="t"
            )
    supervisor_sweep()
    assert _bot_breach(mismatched, "reconcile_mismatch").step == SupervisorBreach.Step.HALTED
    assert state_of(mismatched) == "HALTED"
    assert _bot_breach(matched, "reconcile_mismatch") is None and state_of(matched) == "ACTIVE"


def test_a_lost_runner_heartbeat_halts_and_a_fresh_one_does_not(make_bot):
    lost, alive = make_bot("lost"), make_bot("alive")
    add_runner(lost, heartbeat_at=timezone.now() - timedelta(minutes=4))
    add_runner(alive)
    supervisor_sweep()
    breach = _bot_breach(lost, "runner_heartbeat")
    assert breach.step == SupervisorBreach.Step.HALTED and 240 <= breach.value < 300 and breach.threshold == 180
    assert _bot_breach(alive, "runner_heartbeat") is None and state_of(alive) == "ACTIVE"


def test_a_live_bot_below_t2_is_reduced_and_one_at_t2_is_not(make_bot):
    low, enough = make_bot("low", stage="LIVE", tier="T1"), make_bot("enough", stage="LIVE", tier="T2")
    for bot in (low, enough):
        with tenancy.tenant_context(bot.tenant_id):
            Reconciliation.objects.create(
                bot=bot, status="MATCHED", venue="sim", book="live", is_flat=True, requested_by="t", trace_id="t"
            )
    supervisor_sweep()
    breach = _bot_breach(low, "autonomy_tier")
    assert (breach.value, breach.threshold, state_of(low)) == ("T1", "T2", "REDUCE_ONLY")
    assert _bot_breach(enough, "autonomy_tier") is None and state_of(enough) == "ACTIVE"


def test_market_data_stale_for_more_than_n_bars_warns_and_fresh_data_does_not(make_bot, es):
    store_bars(es, T0, 10)  # the last bar opens at T0+9m and closes at T0+10m
    bot = make_bot("data")
    add_runner(bot)
    supervisor_sweep(now=T0 + 12 * MINUTE)  # two 1m bars missed: within 3
    assert _bot_breach(bot, "data_stale") is None
    supervisor_sweep(now=T0 + 14 * MINUTE)  # four missed: past 3 (not past 2 x 3)
    breach = _bot_breach(bot, "data_stale")
    assert breach.step == SupervisorBreach.Step.WARN and breach.value == 4.0
    assert state_of(bot) == "ACTIVE"  # a warning changes no trading state
    assert incidents(bot, "data_stale")[-1].details["values"]["instruments"]["ES"]["bars_missed"] == 4.0


def test_order_rates_need_enough_orders_and_breach_past_the_threshold(make_bot, tenant_a, owner_a, api_owner_a):
    from oversight.supervisor.triggers import reject_rate, venue_error_rate

    bot = make_bot("quiet")
    thresholds = {"rate_window_seconds": 900, "rate_min_orders": 4, "reject_rate": 0.5, "venue_error_rate": 0.3}
    with tenancy.tenant_context(bot.tenant_id):
        m = reject_rate(bot, thresholds, timezone.now())
        v = venue_error_rate(bot, thresholds, timezone.now())
    # No orders: measured, too few to make a rate, so not a breach (and said so).
    assert (m.breached, m.value, m.values["total"], m.reason) == (False, None, 0, "too few orders in the window")
    assert v.breached is False


def test_an_unmeasurable_drawdown_is_recorded_and_fails_closed_only_for_a_live_bot(make_bot):
    paper = make_bot("paper-blind", risk_limits={"max_drawdown": "500"})
    live = make_bot("live-blind", stage="LIVE", tier="T3", risk_limits={"max_drawdown": "500"})
    with tenancy.tenant_context(live.tenant_id):
        Reconciliation.objects.create(
            bot=live, status="MATCHED", venue="sim", book="live", is_flat=True, requested_by="t", trace_id="t"
        )
    supervisor_sweep()
    run = SupervisorRun.objects.get()
    blind = {(u["bot_id"], u["trigger"]): u for u in run.unknown}
    assert blind[paper.id, "drawdown"]["fail_closed"] is False
    assert "no high-water mark" in blind[paper.id, "drawdown"]["reason"]
    assert blind[live.id, "drawdown"]["fail_closed"] is True
    assert _bot_breach(paper, "drawdown") is None and state_of(paper) == "ACTIVE"
    breach = _bot_breach(live, "drawdown")
    assert breach.value is None and "no high-water mark" in breach.values["reason"]
    assert state_of(live) == "REDUCE_ONLY"
    assert incidents(live, "drawdown")[-1].details["unknown"] is True


def test_system_status_not_ok_acts_on_the_tenant_only_after_its_grace(make_bot, tenant_a):
    make_bot("any", stage="LIVE", tier="T3")  # a fresh tenant is BLOCKED: no market-data key
    now = timezone.now()
    supervisor_sweep(now=now)
    with tenancy.tenant_context(tenant_a.id):
        breach = SupervisorBreach.objects.get(bot__isnull=True, trigger="system_status")
        assert breach.step == SupervisorBreach.Step.PENDING and breach.value == "BLOCKED"
    supervisor_sweep(now=now + timedelta(seconds=299))
    with tenancy.tenant_context(tenant_a.id):
        from execution.models import TradingControl

        assert not TradingControl.objects.filter(bot__isnull=True, state="REDUCE_ONLY").exists()
    supervisor_sweep(now=now + timedelta(seconds=300))
    with tenancy.tenant_context(tenant_a.id):
        breach.refresh_from_db()
        assert breach.step == SupervisorBreach.Step.REDUCE_ONLY
        assert TradingControl.objects.get(bot__isnull=True).state == "REDUCE_ONLY"


def test_system_status_not_ok_only_warns_a_tenant_without_live_bots(make_bot, tenant_a):
    from execution.models import TradingControl

    make_bot("paper-only")
    now = timezone.now()
    supervisor_sweep(now=now)
    supervisor_sweep(now=now + timedelta(seconds=300))
    with tenancy.tenant_context(tenant_a.id):
        breach = SupervisorBreach.objects.get(bot__isnull=True, trigger="system_status")
        assert breach.step == SupervisorBreach.Step.WARN and breach.values["live_bots"] == 0
        assert not TradingControl.objects.filter(bot__isnull=True).exclude(state="ACTIVE").exists()
