"""``bootstrap_tenant <slug> --user <username>``: tenant, user, membership and API token, idempotently."""

from django.core.management.base import BaseCommand, CommandError

from controlplane.models import Membership
from controlplane.services import tenant_bootstrap


class Command(BaseCommand):
    help = (
        "Create a tenant, a user with a random password (printed once), their membership and an API token. "
        "Running it again changes nothing and prints the same token. The token is the last line of output."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--user", required=True, dest="username")
        parser.add_argument("--email", default="")
        parser.add_argument("--role", default=Membership.Role.OWNER, choices=Membership.Role.values)
        parser.add_argument("--name", default=None, help="Display name of the tenant (defaults to the slug).")

    def handle(self, *args, slug, username, email, role, name, **options):
        from django.utils.text import slugify

        if slugify(slug) != slug:
            raise CommandError(f"slug: {slug!r} is not a valid slug (try {slugify(slug)!r})")
        result = tenant_bootstrap(slug=slug, username=username, email=email, role=role, name=name)
        self.stdout.write(f"tenant {result.tenant.slug}: {'created' if result.created_tenant else 'exists'}")
        if result.password:
            self.stdout.write(f"user {username}: created; password (shown once): {result.password}")
        else:
            self.stdout.write(f"user {username}: exists; password unchanged")
        if result.created_membership:
            self.stdout.write(f"membership: created ({result.membership.role})")
        else:
            self.stdout.write(f"membership: exists ({result.membership.role})")
        self.stdout.write(result.token)
