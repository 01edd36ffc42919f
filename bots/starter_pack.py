"""The starter pack: one LAB bot per shipped strategy, on the sim venue and imported bars, so a new tenant can
start a bot without any provider key. Each is identified by its ``key``; installing twice creates nothing new.

| key | strategy | instrument | parameters |
|---|---|---|---|
| starter-ma-crossover | ma_crossover | ES | fast 10, slow 30, size 1, long only |
| starter-donchian | donchian_breakout | ES | entry 20, exit 10, size 1, long and short |
| starter-zscore | zscore_mean_reversion | BTC-USD | lookback 20, entry 2.0, exit 0.5, size 0.01, long only |
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StarterBot:
    key: str
    name: str
    strategy: str
    instruments: tuple[str, ...]
    parameters: dict = field(default_factory=dict)
    risk_limits: dict = field(default_factory=dict)


STARTER_BOTS: tuple[StarterBot, ...] = (
    StarterBot(
        key="starter-ma-crossover",
        name="Starter: MA crossover (ES)",
        strategy="ma_crossover",
        instruments=("ES",),
        parameters={"fast": 10, "slow": 30, "size": 1, "allow_short": False},
        risk_limits={"max_position": 1, "max_order_size": 1},
    ),
    StarterBot(
        key="starter-donchian",
        name="Starter: Donchian breakout (ES)",
        strategy="donchian_breakout",
        instruments=("ES",),
        parameters={"entry_lookback": 20, "exit_lookback": 10, "size": 1, "allow_short": True},
        risk_limits={"max_position": 1, "max_order_size": 1},
    ),
    StarterBot(
        key="starter-zscore",
        name="Starter: z-score mean reversion (BTC-USD)",
        strategy="zscore_mean_reversion",
        instruments=("BTC-USD",),
        parameters={"lookback": 20, "entry_z": 2.0, "exit_z": 0.5, "size": 0.01},
        risk_limits={"max_position": 0.01, "max_order_size": 0.01},
    ),
)
