import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

application = get_wsgi_application()

from controlplane.dbroles import assert_runtime_role_cannot_bypass_rls  # noqa: E402

assert_runtime_role_cannot_bypass_rls()
