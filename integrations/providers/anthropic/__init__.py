"""Anthropic: its client (verify lists models)."""
