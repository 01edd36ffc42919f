"""Reconcile reports say which book they compared: the venue decides (a sim venue's report is of the paper book).

RLS binds the owner too (FORCE), so the backfill runs once per tenant with the tenant set, as the runtime does.
"""

from django.conf import settings
from django.db import migrations, models


def book_from_venue(apps, schema_editor):
    sim_venues = list(settings.SIM_VENUE_FILL_MODELS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id FROM controlplane_tenant ORDER BY id")
        for (tenant_id,) in cursor.fetchall():
            cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id)])
            cursor.execute("UPDATE bots_reconciliation SET book = 'live' WHERE NOT (venue = ANY(%s))", [sim_venues])
        cursor.execute("SELECT set_config('app.tenant_id', '', true)")


class Migration(migrations.Migration):
    dependencies = [("bots", "0006_trace_and_console_indexes")]

    operations = [
        migrations.AddField(
            model_name="reconciliation",
            name="book",
            field=models.CharField(
                choices=[("paper", "Paper (sim venue)"), ("live", "Live (the bot's venue and account)")],
                default="paper",
                max_length=8,
                help_text="The book compared with the venue: paper for a sim venue, live otherwise.",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(book_from_venue, migrations.RunPython.noop),
    ]
