"""OpenAI: its client (verify lists models)."""
