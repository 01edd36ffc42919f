"""The ladder: idempotent while a breach lasts, climbs when it is worse or comes back, never loosens; a PAPER bot
skips DEMOTE; a LIVE bot is demoted through leave-LIVE."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from bots.models import Bot, CancelRequest, Reconciliation, Runner
from controlplane import tenancy
from execution.risk.services import trading_state_set
from oversight.models import SupervisorBreach
from oversight.supervisor.sweep import supervisor_sweep
from tests.oversight.conftest import add_runner, breaches, incidents, state_of

pytestmark = pytest.mark.django_db
Step = SupervisorBreach.Step


def _errors(runner, n):
    with tenancy.tenant_context(runner.tenant_id):
        Runner.objects.filter(pk=runner.pk).update(consecutive_errors=n)


def test_the_same_breach_in_later_sweeps_does_nothing_new(make_bot):
    bot = make_bot("steady")
    add_runner(bot, errors=3)
    supervisor_sweep()
    first = breaches(bot, "tick_errors")
    supervisor_sweep()
    supervisor_sweep()
    again = breaches(bot, "tick_errors")
    assert len(again) == 1 and again[0].step == Step.HALTED and again[0].last_seen > first[0].last_seen
    assert len(incidents(bot, "tick_errors")) == 1 and state_of(bot) == "HALTED"


def test_a_worse_breach_climbs_one_step_once(make_bot):
    bot = make_bot("worse")
    runner = add_runner(bot, errors=3)
    supervisor_sweep()
    _errors(runner, 6)  # 2 x 3: worse
    supervisor_sweep()
    supervisor_sweep()
    [breach] = breaches(bot, "tick_errors")
    assert breach.worse and breach.step == Step.KILL  # HALTED + 1 is DEMOTE: a PAPER bot skips it to KILL
    assert [i.details["step"] for i in incidents(bot, "tick_errors")] == ["Halted", "Kill"]
    with tenancy.tenant_context(bot.tenant_id):
        bot.refresh_from_db()
    assert bot.killed and bot.killed_by == "supervisor" and "tick_errors 6" in bot.kill_reason


def test_a_breach_that_comes_back_within_the_window_climbs_and_a_live_bot_is_demoted_through_leave_live(make_bot):
    bot = make_bot("returning", stage="LIVE", tier="T3")
    with tenancy.tenant_context(bot.tenant_id):
        Reconciliation.objects.create(
            bot=bot, status="MATCHED", venue="sim", book="live", is_flat=True, requested_by="t", trace_id="t"
        )
    runner = add_runner(bot, errors=3)
    now = timezone.now()
    supervisor_sweep(now=now)
    _errors(runner, 0)
    supervisor_sweep(now=now + timedelta(minutes=1))
    assert breaches(bot, "tick_errors")[0].cleared_at is not None
    assert state_of(bot) == "HALTED"  # clearing loosens nothing: going back is the operator's act
    _errors(runner, 3)
    supervisor_sweep(now=now + timedelta(minutes=2))
    episodes = breaches(bot, "tick_errors")
    assert [e.step for e in episodes] == [Step.HALTED, Step.DEMOTE]
    with tenancy.tenant_context(bot.tenant_id):
        bot.refresh_from_db()
        assert bot.stage == "PAPER" and not bot.killed
        assert CancelRequest.objects.filter(bot=bot, purpose=CancelRequest.Purpose.LEAVE_LIVE).count() == 1


def test_the_supervisor_never_loosens_an_operators_stricter_state(make_bot, owner_a):
    bot = make_bot("strict", risk_limits={"max_daily_loss": "100"})
    with tenancy.tenant_context(bot.tenant_id):
        trading_state_set(bot_id=bot.id, state="HALTED", reason="operator", actor=owner_a)
        from traces.models import ProfitVariables

        ProfitVariables.objects.create(bot_id=bot.id, book="paper", day=timezone.now().date(), pnl=-90)
    supervisor_sweep()
    [incident] = incidents(bot, "daily_loss")
    assert incident.details["step"] == "Reduce only" and incident.details["changed"] is False
    assert state_of(bot) == "HALTED"


def test_an_operator_who_sets_active_while_the_breach_goes_on_sees_the_step_taken_again(make_bot, owner_a):
    bot = make_bot("stubborn")
    add_runner(bot, errors=3)
    supervisor_sweep()
    with tenancy.tenant_context(bot.tenant_id):
        trading_state_set(bot_id=bot.id, state="ACTIVE", reason="operator looked", actor=owner_a)
    supervisor_sweep()
    supervisor_sweep()
    assert state_of(bot) == "HALTED"
    assert [i.details["step"] for i in incidents(bot, "tick_errors")] == ["Halted", "Halted"]
    assert len(breaches(bot, "tick_errors")) == 1


def test_killed_and_lab_bots_are_not_swept(make_bot):
    lab = make_bot("lab", stage="LAB")
    killed = make_bot("killed")
    with tenancy.tenant_context(killed.tenant_id):
        Bot.objects.filter(pk=killed.pk).update(killed=True)
    add_runner(lab, errors=9)
    add_runner(killed, errors=9)
    supervisor_sweep()
    assert breaches(lab) == [] and breaches(killed) == []


def test_the_bot_page_lists_the_bots_open_breaches(make_bot, owner_a):
    from tests.observatory.test_bot_page import console, page_of

    bot = make_bot("watched-page")
    add_runner(bot, errors=3)
    client = console(owner_a)
    assert "no open breach" in page_of(client, bot)
    supervisor_sweep()
    page = page_of(client, bot)
    breach = re.search(r'<div class="bot-breach" data-trigger="tick_errors">(.*?)</div>', page, re.S).group(1)
    assert "halted" in breach and "3 vs 3" in breach
