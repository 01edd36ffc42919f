"""Models of the traces app arrive with their issue."""
