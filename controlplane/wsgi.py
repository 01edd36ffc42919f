import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

application = get_wsgi_application()

from controlplane.dbroles import guard_runtime_role_at_start  # noqa: E402

guard_runtime_role_at_start()
