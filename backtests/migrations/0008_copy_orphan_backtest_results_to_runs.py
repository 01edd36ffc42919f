"""The promotion gate and the autonomy score read backtest runs directly; bots.BacktestResult, the mirror written
only for them, goes: this backfill, then the link (0009) and the model (bots 0009) are dropped, each in its own
transaction (rows inserted here leave deferred constraint events that forbid an ALTER TABLE in the same one).

Every result was written from a run in the same transaction (same bot, parameters_hash, classification; status
FINISHED or FAILED; finished_at), so a run already holds what the gate read. A FINISHED result without a run (its
run deleted, or a row written by hand) would be lost: it becomes a FINISHED run first, marked in ``created_by``
as copied from the result. Its starting capital was never recorded on the result: the service's default, 100000,
stands in (the gate and the score read neither). FAILED results without a run decide nothing and are not copied.

RLS binds the owner too (FORCE), so the backfill runs once per tenant with the tenant set, as the runtime does.
"""

from django.db import migrations

DEFAULT_STARTING_CAPITAL = "100000"  # backtests.services.backtest_create's default (no app import in a migration)

COPY_ORPHAN_RESULTS = """
INSERT INTO backtests_backtestrun (
    tenant_id, bot_id, job_id, purpose, strategy, parameters, parameters_hash, instruments, timeframe,
    range_start, range_end, fill_model, starting_capital, gap_policy, status, bars_done, bars_total, engine_path,
    gaps, metrics, equity_curve, trades, no_trade_counts, classification, classification_reasons, error_code,
    error_message, trace_id, created_by, created_at, started_at, finished_at
)
SELECT r.tenant_id, r.bot_id, NULL, 'MANUAL', r.strategy, r.parameters, r.parameters_hash, r.instruments,
    r.timeframe, r.range_start, r.range_end, '{}'::jsonb, %s, 'refuse', 'FINISHED', 0, 0, '', '[]'::jsonb,
    r.metrics, '[]'::jsonb, '[]'::jsonb, '{}'::jsonb, r.classification, r.classification_reasons, '', '',
    r.trace_id, 'migration: copied from bots.BacktestResult ' || r.id, r.created_at, NULL, r.finished_at
FROM bots_backtestresult r
WHERE r.status = 'FINISHED' AND NOT EXISTS (SELECT 1 FROM backtests_backtestrun b WHERE b.result_id = r.id)
"""


def copy_orphan_results(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id FROM controlplane_tenant ORDER BY id")
        for (tenant_id,) in cursor.fetchall():
            cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id)])
            cursor.execute(COPY_ORPHAN_RESULTS, [DEFAULT_STARTING_CAPITAL])
        cursor.execute("SELECT set_config('app.tenant_id', '', true)")


class Migration(migrations.Migration):
    dependencies = [("backtests", "0007_matrix_trade_flags_and_dropped_sets"), ("bots", "0008_live_exit_purpose")]

    operations = [migrations.RunPython(copy_orphan_results, migrations.RunPython.noop)]
