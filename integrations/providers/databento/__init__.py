"""Databento (CME futures market data): its client over the official ``databento`` package."""
