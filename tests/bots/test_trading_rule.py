"""The trading rule on its own: every fact that blocks a bot, and which one is named when several hold."""

import pytest

from bots.models import Stage
from bots.trading_rule import kill_block_reason, trading_block_reason
from controlplane.errors import ErrorCode

CLEAR = dict(system_killed=False, tenant_killed=False, bot_killed=False, stage=Stage.PAPER, reconcile_mismatch=False)


@pytest.mark.parametrize("stage", [Stage.LAB, Stage.BACKTESTED, Stage.PAPER, Stage.LIVE])
def test_a_bot_with_nothing_against_it_may_trade_at_any_stage_on_the_ladder(stage):
    assert trading_block_reason(**{**CLEAR, "stage": stage}) is None


@pytest.mark.parametrize(
    "facts, reason",
    [
        ({"stage": Stage.RETIRED}, ErrorCode.BOT_RETIRED),
        ({"system_killed": True}, ErrorCode.SYSTEM_KILLED),
        ({"tenant_killed": True}, ErrorCode.TENANT_KILLED),
        ({"bot_killed": True}, ErrorCode.BOT_KILLED),
        ({"reconcile_mismatch": True}, ErrorCode.RECONCILE_MISMATCH),
    ],
)
def test_each_fact_alone_blocks_with_its_own_code(facts, reason):
    assert trading_block_reason(**{**CLEAR, **facts}) == reason


@pytest.mark.parametrize(
    "facts, reason",
    [
        ({"stage": Stage.RETIRED, "system_killed": True, "reconcile_mismatch": True}, ErrorCode.BOT_RETIRED),
        ({"system_killed": True, "tenant_killed": True, "bot_killed": True}, ErrorCode.SYSTEM_KILLED),
        ({"tenant_killed": True, "bot_killed": True, "reconcile_mismatch": True}, ErrorCode.TENANT_KILLED),
        ({"bot_killed": True, "reconcile_mismatch": True}, ErrorCode.BOT_KILLED),
    ],
)
def test_retirement_is_named_first_then_the_widest_kill_then_the_mismatch(facts, reason):
    assert trading_block_reason(**{**CLEAR, **facts}) == reason


def test_the_kills_alone_ignore_retirement_and_mismatches_and_name_the_widest_first():
    assert kill_block_reason(system_killed=False, tenant_killed=False, bot_killed=False) is None
    assert kill_block_reason(system_killed=False, tenant_killed=True, bot_killed=True) == ErrorCode.TENANT_KILLED
    assert kill_block_reason(system_killed=True, tenant_killed=True, bot_killed=False) == ErrorCode.SYSTEM_KILLED
    assert kill_block_reason(system_killed=False, tenant_killed=False, bot_killed=True) == ErrorCode.BOT_KILLED
