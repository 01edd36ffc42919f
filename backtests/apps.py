from django.apps import AppConfig


class BacktestsConfig(AppConfig):
    name = "backtests"

    def ready(self) -> None:
        from backtests import autonomy, services
        from bots import job_handlers
        from bots.models import Job
        from controlplane import hooks

        # Not idempotent for the watchdog: a re-queued run would find itself RUNNING and do nothing.
        job_handlers.register_job_handler(Job.Kind.BACKTEST, services.backtest_job_handler, queue="backtests")
        hooks.register("bots.by_autonomy_tier", autonomy.tier_counts)
