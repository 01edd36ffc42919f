"""Google Gemini: its client (verify lists models)."""
