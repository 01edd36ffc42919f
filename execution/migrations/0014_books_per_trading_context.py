"""Books per trading context: positions, equity watermarks and venue inventory belong to the paper or the live book.

Expand, backfill, contract in one migration (the tables are small and Postgres DDL is transactional):
the ``book`` column arrives with the default ``paper``, so every existing position and watermark lands in the paper
book (the issue's rule: what was recorded before books existed is not trusted as a fact about any venue; a LIVE
bot's next reconcile compares an empty live book with its venue and the operator accepts the venue's numbers).
Inventory rows are per venue, so theirs is known: a row of a non-sim venue moves to ``live``. RLS binds the owner
too (FORCE), so that update runs once per tenant with the tenant set, as the runtime does.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

BOOK_CHOICES = [("paper", "Paper (sim venue)"), ("live", "Live (the bot's venue and account)")]


def inventory_of_live_venues_to_live(apps, schema_editor):
    sim_venues = list(settings.SIM_VENUE_FILL_MODELS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id FROM controlplane_tenant ORDER BY id")
        for (tenant_id,) in cursor.fetchall():
            cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id)])
            cursor.execute(
                "UPDATE execution_venueinventory SET book = 'live' WHERE NOT (venue = ANY(%s))", [sim_venues]
            )
        cursor.execute("SELECT set_config('app.tenant_id', '', true)")


class Migration(migrations.Migration):
    dependencies = [("execution", "0013_oms_writer_by_privilege")]

    operations = [
        migrations.AddField(
            model_name="strategyposition",
            name="book",
            field=models.CharField(
                choices=BOOK_CHOICES,
                default="paper",
                max_length=8,
                help_text="paper: fills at the sim venue; live: fills at the bot's venue.",
            ),
            preserve_default=False,
        ),
        migrations.RemoveConstraint(model_name="strategyposition", name="position_one_per_bot_instrument"),
        migrations.AddConstraint(
            model_name="strategyposition",
            constraint=models.UniqueConstraint(
                fields=("bot", "instrument", "book"), name="position_one_per_bot_instrument_book"
            ),
        ),
        migrations.AddField(
            model_name="equitywatermark",
            name="book",
            field=models.CharField(choices=BOOK_CHOICES, default="paper", max_length=8),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="equitywatermark",
            name="bot",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="bots.bot"),
        ),
        migrations.AddConstraint(
            model_name="equitywatermark",
            constraint=models.UniqueConstraint(fields=("bot", "book"), name="equitywatermark_one_per_bot_book"),
        ),
        migrations.AddField(
            model_name="venueinventory",
            name="book",
            field=models.CharField(choices=BOOK_CHOICES, default="paper", max_length=8),
            preserve_default=False,
        ),
        migrations.RunPython(inventory_of_live_venues_to_live, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="venueinventory", name="inventory_one_per_asset"),
        migrations.AddConstraint(
            model_name="venueinventory",
            constraint=models.UniqueConstraint(
                fields=("tenant", "book", "venue", "asset"), name="inventory_one_per_asset"
            ),
        ),
    ]
