"""Timeframes live in ``bots.timeframes`` (bots need them too and sit below execution); kept importable here."""

from bots.timeframes import TIMEFRAME_SECONDS, Timeframe, is_on_grid, timeframe_delta, timeframe_seconds

__all__ = ["TIMEFRAME_SECONDS", "Timeframe", "is_on_grid", "timeframe_delta", "timeframe_seconds"]
