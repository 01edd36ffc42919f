"""``bootstrap_tenant <slug> --user <username> [--new-token]``: tenant, user, membership, idempotently; an API token
for a new user, or with ``--new-token`` (shown once, on the last line; stored only as a digest)."""

from django.core.management.base import BaseCommand, CommandError

from controlplane.models import Membership
from controlplane.services import tenant_bootstrap


class Command(BaseCommand):
    help = (
        "Create a tenant, a user with a random password (printed once), their membership and, for a new user, an "
        "API token. Running it again changes nothing and prints no token; --new-token issues a fresh one (older "
        "tokens keep working until revoked). A token, when issued, is the last line of output and is not shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--user", required=True, dest="username")
        parser.add_argument("--email", default="")
        parser.add_argument("--role", default=Membership.Role.OWNER, choices=Membership.Role.values)
        parser.add_argument("--name", default=None, help="Display name of the tenant (defaults to the slug).")
        parser.add_argument("--new-token", action="store_true", help="Issue a fresh API token for the user.")

    def handle(self, *args, slug, username, email, role, name, new_token, **options):
        from django.utils.text import slugify

        if slugify(slug) != slug:
            raise CommandError(f"slug: {slug!r} is not a valid slug (try {slugify(slug)!r})")
        result = tenant_bootstrap(slug=slug, username=username, email=email, role=role, name=name, new_token=new_token)
        self.stdout.write(f"tenant {result.tenant.slug}: {'created' if result.created_tenant else 'exists'}")
        if result.password:
            self.stdout.write(f"user {username}: created; password (shown once): {result.password}")
        else:
            self.stdout.write(f"user {username}: exists; password unchanged")
        if result.created_membership:
            self.stdout.write(f"membership: created ({result.membership.role})")
        else:
            self.stdout.write(f"membership: exists ({result.membership.role})")
        if result.token is None:
            self.stdout.write("token: none issued (tokens are shown once; --new-token issues a fresh one)")
        else:
            self.stdout.write("token (shown once; older tokens keep working until revoked):")
            self.stdout.write(result.token)
