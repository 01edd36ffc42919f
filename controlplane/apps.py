from django.apps import AppConfig


class ControlPlaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self):
        from django.core.signals import request_finished

        from controlplane import checks  # noqa: F401  (registers the system checks)
        from controlplane.trace import clear_trace_id_after_request

        request_finished.connect(clear_trace_id_after_request, dispatch_uid="controlplane.clear_trace_id")
