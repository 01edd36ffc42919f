"""Polygon / Massive (US equities and crypto market data): its client over the official ``massive`` package."""
