"""The trace table's tenant foreign key goes; a trigger keeps a tenant with traces from being deleted.

Postgres checked the deferred foreign key once per inserted row at COMMIT: 3 ms of a 1,000-bot tick's 5 ms COMMIT,
for a value the forced RLS policy already pins to the transaction's tenant (``tenant_id = current_tenant_id()``
WITH CHECK), which every writer sets from a tenant row it read. What the key also gave, that a tenant with traces
cannot be deleted, is this trigger's: BEFORE DELETE on the tenant table, it locks the trace table in SHARE mode
(waiting for writers in flight, keeping new ones out until the deleting transaction ends) and refuses with a
foreign-key violation when a trace of the tenant exists. The table forces RLS even on its owner, so the function
looks as the deleted tenant (its setting restored after). Deleting a tenant is not something the app does; the
lock is paid only then.
"""

import django.db.models.deletion
from django.db import migrations, models

KEEP_TRACES = """
CREATE FUNCTION controlplane_tenant_keeps_its_traces() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    was text := current_setting('app.tenant_id', true);
    found boolean;
BEGIN
    LOCK TABLE traces_ticktrace IN SHARE MODE;
    PERFORM set_config('app.tenant_id', OLD.id::text, true);
    found := EXISTS (SELECT 1 FROM traces_ticktrace WHERE tenant_id = OLD.id);
    PERFORM set_config('app.tenant_id', coalesce(was, ''), true);
    IF found THEN
        RAISE EXCEPTION 'tenant % has traces: it cannot be deleted', OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'traces_ticktrace';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER tenant_keeps_its_traces BEFORE DELETE ON controlplane_tenant
    FOR EACH ROW EXECUTE FUNCTION controlplane_tenant_keeps_its_traces();
"""
DROP_KEEP_TRACES = """
DROP TRIGGER tenant_keeps_its_traces ON controlplane_tenant;
DROP FUNCTION controlplane_tenant_keeps_its_traces();
"""


class Migration(migrations.Migration):
    dependencies = [("controlplane", "0009_heartbeat_kind_quote_collector"), ("traces", "0012_reason_code_tick_late")]

    operations = [
        migrations.RunSQL(KEEP_TRACES, DROP_KEEP_TRACES),
        migrations.AlterField(
            model_name="ticktrace",
            name="tenant",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="controlplane.tenant",
            ),
        ),
    ]
