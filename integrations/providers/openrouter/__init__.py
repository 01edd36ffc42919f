"""OpenRouter: its client (verify reads the key's info)."""
