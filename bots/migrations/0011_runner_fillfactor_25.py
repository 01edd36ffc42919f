from django.db import migrations


class Migration(migrations.Migration):
    """Every tick rewrites each running runner's heartbeat (1,000 rows a round in bench/tick_throughput.py). At
    fillfactor 70 a page has room for the new versions of under half its rows: on the bench's database between a
    third and 95% of those updates stayed HOT from one run to the next (the others left their page and wrote an
    entry in each of the table's six indexes; 12-17 ms a round at the worst, 2.4 ms at the best). At 25 a page holds
    a round's new versions until the previous ones are pruned, and every update stayed HOT in every run (2.2-3.3
    ms). The table is one row per runner start, small; it grows to about three times its pages. Pages already full
    keep their rows until the table is rewritten; new rows go where the new setting leaves room."""

    dependencies = [("bots", "0010_runner_parameters_hash")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE bots_runner SET (fillfactor = 25)", reverse_sql="ALTER TABLE bots_runner SET (fillfactor = 70)"
        )
    ]
