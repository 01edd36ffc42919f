from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("backtests", "0008_copy_orphan_backtest_results_to_runs")]

    operations = [migrations.RemoveField(model_name="backtestrun", name="result")]
