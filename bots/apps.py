from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"

    def ready(self) -> None:
        from bots import job_handlers, selectors, services
        from controlplane import hooks
        from bots.models import Job

        job_handlers.register_job_handler(
            Job.Kind.RECONCILE, services.reconcile_job_handler, idempotent=True, needs_bot=True
        )
        hooks.register("integrations.providers_in_use", selectors.providers_in_use)
