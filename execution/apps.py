from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "execution"

    def ready(self) -> None:
        """Serve the layers below through their hooks: kills cancel through the OMS, reconcile and the LIVE gate read
        our books (bots.hooks), and system status reads the tick's health (controlplane.hooks)."""
        from django.conf import settings

        from bots import hooks as bot_hooks
        from controlplane import hooks as status_hooks
        from execution import oms, paper, risk_state, selectors
        from execution.venues.sim import sim_position_source

        bot_hooks.register_cancel_hook(oms.cancel_hook)
        for venue in settings.SIM_VENUE_FILL_MODELS:
            bot_hooks.register_position_source(venue, sim_position_source)
        from execution.venues.live_positions import live_position_source
        from integrations.venues.registry import live_venues

        for venue in live_venues():
            bot_hooks.register_position_source(venue, live_position_source)
        bot_hooks.register_paper_record_source(paper.paper_record)
        from execution import reconcile_resolution

        bot_hooks.register_reconcile_resolver(
            bot_hooks.ReconcileResolver(
                book=reconcile_resolution.book_resolution, send=reconcile_resolution.send_resolution_orders
            )
        )
        bot_hooks.register_risk_limits_validator(risk_state.validate_risk_limits)
        status_hooks.register("scheduler.last_tick_at", selectors.last_tick_at)
        status_hooks.register("status.market_data_problems", selectors.market_data_problems)
