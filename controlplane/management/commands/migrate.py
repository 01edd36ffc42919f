"""``migrate`` runs as the table owner (the "owner" alias) and then grants the runtime role its DML rights.

The runtime role must never own tables (it would bypass RLS), so migrations cannot run on it.
"""

from django.core.management.commands.migrate import Command as DjangoMigrate

from controlplane.dbroles import grant_runtime_privileges


class Command(DjangoMigrate):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database="owner")

    def handle(self, *args, **options):
        super().handle(*args, **options)
        if options["database"] == "owner" and not options.get("plan") and not options.get("check_unapplied"):
            grant_runtime_privileges(owner_alias="owner", runtime_alias="default")
