from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "execution"

    def ready(self) -> None:
        from controlplane import hooks
        from execution import selectors

        hooks.register("scheduler.last_tick_at", selectors.last_tick_at)
        hooks.register("status.market_data_problems", selectors.market_data_problems)
