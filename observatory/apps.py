from django.apps import AppConfig


class ObservatoryConfig(AppConfig):
    """The console's own pages, the top layer: it reads every app below it and changes state only through their
    services."""

    name = "observatory"
