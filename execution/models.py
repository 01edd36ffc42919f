"""Models of the execution app arrive with their issue."""
