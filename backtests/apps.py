from django.apps import AppConfig


class BacktestsConfig(AppConfig):
    name = "backtests"

    def ready(self) -> None:
        from backtests import runs
        from bots import job_handlers
        from bots.models import Job

        # Not idempotent for the watchdog: a re-queued run would find itself RUNNING and do nothing.
        job_handlers.register_job_handler(Job.Kind.BACKTEST, runs.backtest_job_handler, queue="backtests")
