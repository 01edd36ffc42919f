"""Create (once) the demo tenant and the admin user of ``make run``, and say how to log in.

The password and the API token are printed once, on the run that creates the user, and only to a terminal:
``make run``'s output is often kept as a log (``make run > run.log``, a service manager's journal), and a secret in a
log outlives every rotation. Later runs, and a first run whose output is not a terminal, say where to find them.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from controlplane.models import Membership
from controlplane.services import tenant_bootstrap


class Command(BaseCommand):
    help = "Create the demo tenant and an admin superuser (idempotent); print their credentials once, to a terminal."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, tenant, username, **options):
        password_file = settings.DATA_DIR / "admin-password"
        remembered = password_file.read_text().strip() if password_file.exists() else None
        result = tenant_bootstrap(
            slug=tenant,
            username=username,
            role=Membership.Role.OWNER,
            name="Demo tenant",
            actor_name="ensure_demo",
            password=remembered,
            staff=True,
        )
        if not result.user.is_superuser:
            result.user.is_superuser = True
            result.user.is_staff = True
            result.user.save(update_fields=["is_superuser", "is_staff"])
        if result.password and not password_file.exists():
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.touch(mode=0o600)
            password_file.write_text(result.password)
        lines = [f"Demo tenant: {result.tenant.slug}", f"Admin user:  {username}"]
        if result.password and self.stdout.isatty():
            lines += [
                f"Password:    {result.password}",
                f"API token:   {result.token}",
                "(shown this once; later runs print neither)",
            ]
        else:
            lines += [
                f"Password:    not printed; it is in {password_file} unless changed since "
                f"(change it in the console: /admin/password_change/)",
                "API token:   not printed; `manage.py bootstrap_tenant <slug> --user <name> --new-token` issues one; the console lists and revokes them at /admin/controlplane/apitoken/",
            ]
        self.stdout.write("\n".join(lines))
