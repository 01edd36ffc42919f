"""Profit variables per book: every existing day lands in the paper book (see execution 0014 for why)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("traces", "0006_human_plurals")]

    operations = [
        migrations.AddField(
            model_name="profitvariables",
            name="book",
            field=models.CharField(
                choices=[("paper", "Paper (sim venue)"), ("live", "Live (the bot's venue and account)")],
                default="paper",
                max_length=8,
                help_text="paper: the day's sim fills; live: the day's fills at the bot's venue.",
            ),
            preserve_default=False,
        ),
        migrations.RemoveConstraint(model_name="profitvariables", name="profitvariables_one_per_day"),
        migrations.AddConstraint(
            model_name="profitvariables",
            constraint=models.UniqueConstraint(
                fields=("tenant", "bot_id", "book", "day"), name="profitvariables_one_per_book_day"
            ),
        ),
    ]
