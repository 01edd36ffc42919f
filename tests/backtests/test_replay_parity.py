"""Backtest / replay parity: the same stored bars through the live tick pipeline (replay runner → risk → intent →
OMS → sim venue) and through the backtest engine give the same decisions and the same fills, for every strategy."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction

from backtests import runs as backtest_runs
from backtests import services as backtest_services
from backtests.data import load_bars
from backtests.engine import ts_to_datetimes
from backtests.runs import run_engine
from backtests.models import BacktestRun
from bots import services as bot_services
from bots.models import Runner
from controlplane import tenancy
from execution.fill_model import FillModel
from execution.models import Fill
from execution.tick.replay import run_replay
from tests.backtests.helpers import START, store_walk
from tests.factories import InstrumentFactory
from traces.models import TickTrace

# Two trading days of minute bars per strategy: each replayed bar runs the whole live pipeline (a few ms without a
# trade, tens of ms with one), so the parameters trade a few dozen times rather than on every wiggle.
BARS = 2000
MINUTE = timedelta(minutes=1)
STRATEGIES = [
    ("ma_crossover", {"fast": 10, "slow": 30, "allow_short": True}),
    ("donchian_breakout", {"entry_lookback": 40, "exit_lookback": 15, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 30, "entry_z": 1.8, "exit_z": 0.3, "allow_short": True}),
]


@pytest.mark.parametrize("strategy,params", STRATEGIES)
def test_backtest_and_replay_of_the_same_bars_decide_and_fill_the_same(strategy, params, tenant_a, owner_a):
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, BARS, timeframe="1m", base=30000.0, seed=21)
    end = START + BARS * MINUTE
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a, name=f"parity-{strategy}", strategy=strategy, parameters=params, instruments=["BTC-USD"]
        )
        # The replay ticks at as_of = bar open + 1m: from the first bar's close to the last one's.
        runner = bot_services.runner_start(
            bot_id=bot.id, actor=owner_a, mode=Runner.Mode.REPLAY, replay_start=START + MINUTE, replay_end=end
        )
        run_replay(runner_id=runner.id)
        replay_decisions = list(
            TickTrace.objects.filter(context="replay", run_ref=runner.id, kind="decision")
            .order_by("bar_ts")
            .values_list("bar_ts", "signal")
        )
        replay_fills = [
            (1 if f.side == "buy" else -1, float(f.quantity), float(f.price), f.ts)
            for f in Fill.objects.filter(bot_id=bot.id).order_by("id")
        ]

        run = backtest_services.backtest_create(actor=owner_a, bot_id=bot.id, timeframe="1m", start=START, end=end)
        backtest_runs.backtest_execute(run_id=run.id)
        with transaction.atomic():
            run = BacktestRun.objects.get(pk=run.id)
            backtest_decisions = list(
                TickTrace.objects.filter(context="backtest", run_ref=run.id)
                .order_by("bar_ts")
                .values_list("bar_ts", "signal")
            )
    assert run.status == "FINISHED", run.error_message
    assert len(replay_decisions) > 50  # dozens of trades each (67, 93 and 132 on these bars)
    assert [ts for ts, _ in backtest_decisions] == [ts for ts, _ in replay_decisions]
    assert [s["target"] for _, s in backtest_decisions] == [float(s["target"]) for _, s in replay_decisions]

    bars = load_bars(instrument=btc, timeframe="1m", start=START, end=end)
    engine = run_engine(
        strategy_name=strategy,
        params=run.parameters,
        bars=bars,
        instrument=btc,
        model=FillModel.from_config(settings.SIM_VENUE_FILL_MODELS["sim"]),
        capital=100_000.0,
    )
    bar_times = ts_to_datetimes(bars.ts)
    engine_fills = [(f.side, f.quantity, f.price, bar_times[f.filled_at]) for f in engine.fills]
    assert engine_fills == replay_fills
