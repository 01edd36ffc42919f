from django.apps import AppConfig


class OversightConfig(AppConfig):
    """The layer that judges a bot: promotion gates, reconcile, autonomy scores and system status."""

    name = "oversight"

    def ready(self) -> None:
        from bots import job_handlers
        from bots.models import Job
        from oversight.reconcile import reconcile_job_handler

        job_handlers.register_job_handler(Job.Kind.RECONCILE, reconcile_job_handler, idempotent=True, needs_bot=True)
