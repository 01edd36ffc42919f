"""Models of the bots app arrive with their issue."""
