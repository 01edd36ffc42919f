"""Models of the backtests app arrive with their issue."""
