"""Binance.US (crypto spot): its ccxt client; orders go through ``providers.ccxt_venue``."""
