"""``restore FILE``: load a ``backup`` into the empty database of DATABASE_OWNER_URL, as the owner role."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from controlplane import backups


class Command(BaseCommand):
    help = (
        "Restore a `manage.py backup` file into the database of DATABASE_OWNER_URL, which must be empty (create it "
        "owned by the owner role first). Objects end up owned by the owner; the runtime role's grants come back."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file, **options):
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            if cursor.fetchone()[0]:
                raise CommandError("the target database is not empty: restore into a freshly created database")
        connections["owner"].close()
        try:
            backups.restore(file, connections["owner"].settings_dict)
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"restored {file} into {connections['owner'].settings_dict['NAME']}")
