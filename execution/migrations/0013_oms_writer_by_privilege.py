"""The OMS writer mark by privilege, not by convention (invariant 1).

Before: the trigger trusted ``current_setting('app.writer') = 'oms'``, which the runtime role could set itself with
``set_config``. Now the mark is a row holding the transaction's id in ``cp_private.oms_write_txn``: a schema the
owner creates and never grants to the runtime role. Only ``app_oms_write_begin()`` / ``app_oms_write_end()``
(SECURITY DEFINER, owned by the migrating owner) write it, and the trigger function (SECURITY DEFINER too) reads it.
A transaction id is never reused, so a row left behind (the OMS always removes its own) grants nothing later; a
rolled-back transaction takes its row with it. Kept inline: migrations import no app code.
"""

from django.db import migrations

FORWARD_SQL = """
CREATE SCHEMA IF NOT EXISTS cp_private;
REVOKE ALL ON SCHEMA cp_private FROM PUBLIC;
CREATE TABLE cp_private.oms_write_txn (
    txid xid8 PRIMARY KEY,
    began_at timestamptz NOT NULL DEFAULT now(),
    session_user_name name NOT NULL DEFAULT session_user
);
REVOKE ALL ON cp_private.oms_write_txn FROM PUBLIC;

CREATE FUNCTION app_oms_write_begin() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO cp_private.oms_write_txn (txid) VALUES (pg_current_xact_id()) ON CONFLICT (txid) DO NOTHING;
$$;
CREATE FUNCTION app_oms_write_end() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM cp_private.oms_write_txn WHERE txid = pg_current_xact_id();
$$;

CREATE OR REPLACE FUNCTION execution_oms_writer_only() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cp_private.oms_write_txn WHERE txid = pg_current_xact_id()) THEN
        RAISE EXCEPTION '% on % refused: only the OMS writes orders and fills', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'the OMS marks its transaction with app_oms_write_begin(); app.writer is no longer trusted';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
"""

REVERSE_SQL = """
CREATE OR REPLACE FUNCTION execution_oms_writer_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('app.writer', true), '') <> 'oms' THEN
        RAISE EXCEPTION '% on % refused: only the OMS writes orders and fills', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
ALTER FUNCTION execution_oms_writer_only() SECURITY INVOKER RESET search_path;
DROP FUNCTION IF EXISTS app_oms_write_end();
DROP FUNCTION IF EXISTS app_oms_write_begin();
DROP TABLE IF EXISTS cp_private.oms_write_txn;
DROP SCHEMA IF EXISTS cp_private;
"""


class Migration(migrations.Migration):
    dependencies = [("execution", "0012_trace_and_console_indexes")]

    operations = [migrations.RunSQL(FORWARD_SQL, REVERSE_SQL)]
