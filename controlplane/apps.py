from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ControlPlaneConfig(AppConfig):
    default = True  # the module holds the admin's config too
    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self):
        from django.core.signals import request_finished

        from controlplane import checks  # noqa: F401  (registers the system checks)
        from controlplane.trace import clear_trace_id_after_request

        request_finished.connect(clear_trace_id_after_request, dispatch_uid="controlplane.clear_trace_id")


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin, whose default site is the console's (controlplane.console: django-otp's second factor at
    login). Here, not in console.py, because INSTALLED_APPS imports it before any model can be."""

    default = False
    default_site = "controlplane.console.ConsoleAdminSite"
