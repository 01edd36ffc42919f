"""Models of the integrations app arrive with their issue."""
