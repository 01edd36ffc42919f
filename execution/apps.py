from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "execution"

    def ready(self):
        """Serve the lifecycle (bots.hooks): kills cancel through the OMS, reconcile and the LIVE gate read our books."""
        from django.conf import settings

        from bots import hooks
        from execution import oms, paper
        from execution.venues.sim import sim_position_source

        hooks.register_cancel_hook(oms.cancel_hook)
        for venue in settings.SIM_VENUE_FILL_MODELS:
            hooks.register_position_source(venue, sim_position_source)
        hooks.register_paper_record_source(paper.paper_record)
