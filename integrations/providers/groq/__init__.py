"""Groq: its client (verify lists models)."""
