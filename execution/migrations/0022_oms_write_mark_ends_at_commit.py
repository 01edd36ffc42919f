"""The OMS's write mark removes itself when its transaction commits.

A block of ``execution.orders.writer.oms_writes`` that opened its transaction called ``app_oms_write_end()`` just
before its COMMIT, a round trip on every OMS commit (twice on the path of every intent's "sent" time) only to delete
the mark's row. A deferred constraint trigger on the mark's table deletes it at COMMIT instead, on the server, in the
same transaction. It only ever removes a mark, never adds one: the guard grants exactly what it granted (the mark
is still written only by ``app_oms_write_begin()``, the table still out of the runtime role's reach, a rolled-back
transaction still takes its row with it). A block nested in another transaction still calls ``app_oms_write_end()``
on its way out, so the enclosing transaction's later statements are not the OMS's. Kept inline: migrations import no
app code.
"""

from django.db import migrations

FORWARD_SQL = """
CREATE FUNCTION cp_private.oms_write_txn_end_at_commit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM cp_private.oms_write_txn WHERE txid = NEW.txid;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION cp_private.oms_write_txn_end_at_commit() FROM PUBLIC;
CREATE CONSTRAINT TRIGGER oms_write_txn_end_at_commit AFTER INSERT ON cp_private.oms_write_txn
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cp_private.oms_write_txn_end_at_commit();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS oms_write_txn_end_at_commit ON cp_private.oms_write_txn;
DROP FUNCTION IF EXISTS cp_private.oms_write_txn_end_at_commit();
"""


class Migration(migrations.Migration):
    dependencies = [("execution", "0021_order_intent_indexes_not_tenant_led")]

    operations = [migrations.RunSQL(FORWARD_SQL, REVERSE_SQL)]
