"""``backup --out FILE``: the whole database, every tenant's rows included, as the backup role (pg_dump -Fc)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from controlplane import backups


class Command(BaseCommand):
    help = (
        "Dump the whole database in pg_dump's custom format as the read-only BYPASSRLS backup role (cp_backup, or "
        "DATABASE_BACKUP_URL's user), so forced row-level security does not hide tenant rows. Restore with "
        "`manage.py restore FILE` into an empty database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args, out, **options):
        try:
            path = backups.backup(out)
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"backup written: {path} ({path.stat().st_size} bytes)")
