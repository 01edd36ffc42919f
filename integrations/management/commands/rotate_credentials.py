"""Re-encrypt every stored credential under the newest key in CREDENTIALS_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand

from integrations.services import credentials_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt stored credentials under the first key of CREDENTIALS_ENCRYPTION_KEYS. Rotate by putting "
        "a new key first, running this, then removing the old key."
    )

    def handle(self, *args, **options):
        count = credentials_reencrypt()
        self.stdout.write(f"Re-encrypted {count} credential(s) under the newest key.")
