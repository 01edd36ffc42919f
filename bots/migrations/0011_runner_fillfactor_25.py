from django.db import migrations


class Migration(migrations.Migration):
    """Every tick rewrites each running runner's heartbeat (1,000 rows a round in bench/tick_throughput.py). At
    fillfactor 70 a page has room for the new versions of under half its rows, so most of those updates left the page
    and wrote an entry in each of the table's six indexes (a third HOT: 12-17 ms a round); at 25 a page holds the
    previous round's versions until it is pruned, and every update stays on its page (all HOT: 3.3 ms). The table
    is one row per runner start, small; it grows to four times its rows' size. Pages already full keep their rows
    until the table is rewritten; new rows go where the new setting leaves room."""

    dependencies = [("bots", "0010_runner_parameters_hash")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE bots_runner SET (fillfactor = 25)", reverse_sql="ALTER TABLE bots_runner SET (fillfactor = 70)"
        )
    ]
