from django.apps import AppConfig
from django.conf import settings


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        """Read the providers' credentials from the environment once, at start-up, into
        ``settings.INTEGRATION_ENV_CREDENTIALS``: the names are the registry's, so the settings module (which
        imports no app) cannot compute it. A value the settings module already set is kept."""
        from integrations.credentials import environment_credentials

        if not hasattr(settings, "INTEGRATION_ENV_CREDENTIALS"):
            settings.INTEGRATION_ENV_CREDENTIALS = environment_credentials()
