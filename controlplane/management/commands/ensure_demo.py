"""Create (once) the demo tenant and the admin user that ``make run`` prints, and print how to log in."""

from django.conf import settings
from django.core.management.base import BaseCommand

from controlplane.models import Membership
from controlplane.services import tenant_bootstrap


class Command(BaseCommand):
    help = "Create the demo tenant and an admin superuser (idempotent) and print their credentials."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, tenant, username, **options):
        password_file = settings.DATA_DIR / "admin-password"
        remembered = password_file.read_text().strip() if password_file.exists() else None
        result = tenant_bootstrap(
            slug=tenant, username=username, role=Membership.Role.OWNER, name="Demo tenant",
            actor_name="ensure_demo", password=remembered, staff=True,
        )
        if not result.user.is_superuser:
            result.user.is_superuser = True
            result.user.is_staff = True
            result.user.save(update_fields=["is_superuser", "is_staff"])
        if result.password:
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.touch(mode=0o600)
            password_file.write_text(result.password)
            remembered = result.password
        shown = remembered or "(unchanged; set it with: python manage.py changepassword %s)" % username
        self.stdout.write(
            f"Demo tenant: {result.tenant.slug}\n"
            f"Admin user:  {username}\n"
            f"Password:    {shown}\n"
            f"API token:   {result.token}"
        )
