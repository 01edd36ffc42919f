"""The tick decides the bots of a batch that share a strategy together (``decide_many``), and each trace carries
exactly the decision its bot gets deciding alone: same bars, same position, same parameters."""

from datetime import timedelta

import pytest

from bots import services as bot_services
from bots.models import Runner
from bots.strategies import get_strategy
from controlplane import tenancy
from execution.models import Instrument
from execution.tick.batches import BatchBars, run_tick_batch
from tests.backtests.helpers import START, store_walk
from traces.models import TickTrace

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)
BARS = 90
BOTS = [
    ("ma_crossover", {"fast": 2, "slow": 5, "size": 1}),
    ("ma_crossover", {"fast": 3, "slow": 12, "size": 2, "allow_short": True}),
    ("ma_crossover", {"fast": 5, "slow": 20, "size": 1, "allow_short": True}),
    ("ma_crossover", {"fast": 10, "slow": 200, "size": 1}),  # more history than stored: INSUFFICIENT_HISTORY
    ("donchian_breakout", {"entry_lookback": 5, "exit_lookback": 2, "size": 1, "allow_short": True}),
    ("donchian_breakout", {"entry_lookback": 10, "exit_lookback": 5, "size": 3}),
    ("donchian_breakout", {"entry_lookback": 3, "exit_lookback": 3, "size": 1, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 5, "entry_z": 0.5, "exit_z": 0.1, "size": 1, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 20, "entry_z": 1.0, "exit_z": 0.2, "size": 2}),
    ("zscore_mean_reversion", {"lookback": 8, "entry_z": 0.8, "exit_z": 0.0, "size": 1, "allow_short": True}),
    # Configured as an earlier bot: the tick decides alike bots on one position once and gives each its own trace.
    ("ma_crossover", {"fast": 3, "slow": 12, "size": 2, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 5, "entry_z": 0.5, "exit_z": 0.1, "size": 1, "allow_short": True}),
]
# Configured as earlier bots but started later, flat while their twins hold a position: alike bots on other
# positions decide each on its own.
LATE = [BOTS[1], BOTS[4], BOTS[7]]


def test_batched_decisions_equal_deciding_each_bot_alone(tenant_a, owner_a):
    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_walk(instrument, BARS, seed=13)
    with tenancy.tenant_context(tenant_a.id):
        bots = []
        for n, (strategy, params) in enumerate(BOTS):
            bot = bot_services.bot_create(
                actor=owner_a, name=f"b{n}", strategy=strategy, parameters=params, instruments=["BTC-USD"]
            )
            bot_services.runner_start(bot_id=bot.id, actor=owner_a)
            bots.append(bot)
    reasons, positions = set(), set()
    for minute in range(60, BARS):  # orders of one tick fill on the next: the bots' positions drift apart
        as_of = START + minute * MINUTE
        if minute == 75:
            with tenancy.tenant_context(tenant_a.id):
                for n, (strategy, params) in enumerate(LATE):
                    bot = bot_services.bot_create(
                        actor=owner_a, name=f"late{n}", strategy=strategy, parameters=params, instruments=["BTC-USD"]
                    )
                    bot_services.runner_start(bot_id=bot.id, actor=owner_a)
                    bots.append(bot)
        result = run_tick_batch(instrument=instrument, timeframe="1m", as_of=as_of, sync_oms=True)
        assert result.bots == len(bots) and not result.errors, result.reasons
        history = BatchBars(instrument=instrument, timeframe="1m", as_of=as_of)
        _, bars = history.read(max(get_strategy(s).warmup_bars(get_strategy(s).validate(p)) for s, p in BOTS) + 1)
        with tenancy.tenant_context(tenant_a.id):
            traced = {t.bot_id: t for t in TickTrace.objects.filter(bar_ts=as_of - MINUTE)}
        for bot in bots:
            trace = traced[bot.id]
            position = trace.inputs["position"]
            alone = get_strategy(bot.strategy).decide(bot.parameters, bars, position)
            assert trace.signal == {"target": alone.target, "reason": alone.reason, **alone.values}, bot.name
            reasons.add(alone.reason)
            positions.add(position)
    assert "INSUFFICIENT_HISTORY" in reasons and len(reasons) >= 6, reasons
    assert {-1.0, 0.0, 1.0} <= positions, positions


def test_one_bots_corrupt_parameters_fail_that_bot_alone_and_its_strategy_peers_still_decide(tenant_a, owner_a):
    """The batch call for a strategy fails on one bot's parameters: the tick decides that strategy's bots one by one,
    so the corrupt bot is a TICK_ERROR and the others get the decisions they would get alone."""
    from bots.models import Bot

    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_walk(instrument, BARS, seed=13)
    with tenancy.tenant_context(tenant_a.id):
        bots = []
        for n, params in enumerate([{"fast": 2, "slow": 5}, {"fast": 3, "slow": 12}, {"fast": 4, "slow": 9}]):
            bot = bot_services.bot_create(
                actor=owner_a, name=f"m{n}", strategy="ma_crossover", parameters=params, instruments=["BTC-USD"]
            )
            bot_services.runner_start(bot_id=bot.id, actor=owner_a)
            bots.append(bot)
        Bot.objects.filter(pk=bots[1].pk).update(parameters={"fast": 3})  # corrupted outside the services
    as_of = START + 70 * MINUTE
    result = run_tick_batch(instrument=instrument, timeframe="1m", as_of=as_of, sync_oms=True)
    assert result.errors == 1 and result.reasons["TICK_ERROR"] == 1
    _, bars = BatchBars(instrument=instrument, timeframe="1m", as_of=as_of).read(13)
    with tenancy.tenant_context(tenant_a.id):
        traced = {t.bot_id: t for t in TickTrace.objects.filter(bar_ts=as_of - MINUTE)}
    assert traced[bots[1].id].reason_code == "TICK_ERROR" and traced[bots[1].id].details["error"] == "KeyError"
    for bot in (bots[0], bots[2]):
        alone = get_strategy("ma_crossover").decide(bot.parameters, bars, 0.0)
        assert traced[bot.id].signal == {"target": alone.target, "reason": alone.reason, **alone.values}


def test_a_bot_claiming_a_warmup_past_the_tick_cap_fails_alone_and_its_peers_still_decide(tenant_a, owner_a, settings):
    """Corrupt parameters can claim any warm-up (here 10^30 bars, past a bigint): the batch reads at most
    TICK_MAX_WARMUP_BARS + 1 bars, so the read still succeeds, and the bot that wants more is that bot's TICK_ERROR
    (counted toward its circuit breaker); the others decide as they would alone."""
    from bots.models import Bot

    settings.TICK_MAX_WARMUP_BARS = 50
    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_walk(instrument, BARS, seed=13)
    with tenancy.tenant_context(tenant_a.id):
        bots = []
        for n, params in enumerate([{"fast": 2, "slow": 5}, {"fast": 3, "slow": 12}, {"fast": 3, "slow": 40}]):
            bot = bot_services.bot_create(
                actor=owner_a, name=f"w{n}", strategy="ma_crossover", parameters=params, instruments=["BTC-USD"]
            )
            bot_services.runner_start(bot_id=bot.id, actor=owner_a)
            bots.append(bot)
        Bot.objects.filter(pk=bots[1].pk).update(parameters={"fast": 3, "slow": 10**30})  # outside the services
        Bot.objects.filter(pk=bots[2].pk).update(parameters={"fast": 3, "slow": 51})  # valid, but past this cap
    as_of = START + 70 * MINUTE
    result = run_tick_batch(instrument=instrument, timeframe="1m", as_of=as_of, sync_oms=True)
    assert result.bots == 3 and result.errors == 2 and result.reasons["TICK_ERROR"] == 2, result.reasons
    _, bars = BatchBars(instrument=instrument, timeframe="1m", as_of=as_of).read(6)
    with tenancy.tenant_context(tenant_a.id):
        traced = {t.bot_id: t for t in TickTrace.objects.filter(bar_ts=as_of - MINUTE)}
        consecutive = dict(Runner.objects.values_list("bot_id", "consecutive_errors"))
    for bot, claimed in ((bots[1], 10**30), (bots[2], 51)):
        trace = traced[bot.id]
        assert trace.reason_code == "TICK_ERROR" and trace.details["error_code"] == "VALIDATION_ERROR"
        assert trace.details["error_details"] == {"warmup_bars": str(claimed), "max_warmup_bars": 50}
        assert consecutive[bot.id] == 1
    alone = get_strategy("ma_crossover").decide(bots[0].parameters, bars, 0.0)
    assert traced[bots[0].id].signal == {"target": alone.target, "reason": alone.reason, **alone.values}
    assert consecutive[bots[0].id] == 0
