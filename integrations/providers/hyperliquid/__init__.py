"""Hyperliquid (crypto perpetuals): its ccxt client; orders go through ``providers.ccxt_venue``."""
