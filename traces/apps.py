from django.apps import AppConfig
from django.db.backends.signals import connection_created


class TracesConfig(AppConfig):
    name = "traces"

    def ready(self):
        from traces.writer import create_session_stage

        connection_created.connect(create_session_stage, dispatch_uid="traces.create_session_stage")
