from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"

    def ready(self) -> None:
        from bots import jobs, services
        from bots.models import Job

        jobs.register_job_handler(Job.Kind.RECONCILE, services.reconcile_job_handler, idempotent=True,
                                  needs_bot=True)
