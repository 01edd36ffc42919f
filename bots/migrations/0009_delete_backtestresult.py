"""The BacktestResult mirror goes: the promotion gate and the autonomy score read backtests.BacktestRun (backtests
0008 copied any result that had no run). Going back recreates the empty table with its tenant policy."""

from django.db import migrations

RESTORE_TENANT_POLICY = """
ALTER TABLE bots_backtestresult ENABLE ROW LEVEL SECURITY;
ALTER TABLE bots_backtestresult FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bots_backtestresult
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
"""


class Migration(migrations.Migration):
    dependencies = [("bots", "0008_live_exit_purpose"), ("backtests", "0009_remove_backtestrun_result")]

    operations = [
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=RESTORE_TENANT_POLICY),
        migrations.DeleteModel(name="BacktestResult"),
    ]
