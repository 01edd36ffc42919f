"""Row-level security for tenant-owned tables, as one migration operation.

Adding a tenant-owned model is two lines: subclass ``TenantOwnedModel`` and put
``EnableTenantRLS("modelname")`` in its migration after the CreateModel.
"""

from django.db import migrations

POLICY_NAME = "tenant_isolation"
DEFAULT_PREDICATE = "tenant_id = current_tenant_id()"

CREATE_FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION current_tenant_id() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::bigint $$;
CREATE OR REPLACE FUNCTION current_app_user_id() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::bigint $$;
"""
DROP_FUNCTIONS_SQL = "DROP FUNCTION IF EXISTS current_tenant_id(); DROP FUNCTION IF EXISTS current_app_user_id();"


class EnableTenantRLS(migrations.operations.base.Operation):
    """ENABLE and FORCE row-level security on a model's table with the tenant policy.

    ``predicate`` widens the default ``tenant_id = current_tenant_id()`` for the rare table that needs it
    (memberships are visible to their own user); ``check`` is what rows written must satisfy and defaults to the
    same predicate.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str, predicate: str = DEFAULT_PREDICATE, check: str | None = None):
        self.model_name = model_name
        self.predicate = predicate
        self.check = check or predicate

    def deconstruct(self):
        kwargs = {"model_name": self.model_name}
        if self.predicate != DEFAULT_PREDICATE:
            kwargs["predicate"] = self.predicate
        if self.check != self.predicate:
            kwargs["check"] = self.check
        return (self.__class__.__qualname__, [], kwargs)

    def state_forwards(self, app_label, state):
        pass

    def _table(self, app_label, state):
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, to_state))
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY {POLICY_NAME} ON {table} USING ({self.predicate}) WITH CHECK ({self.check})"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, from_state))
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Enable tenant row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"rls_{self.model_name.lower()}"


def append_only_trigger_sql(table: str) -> tuple[str, str]:
    """(forward, reverse) SQL for a trigger that refuses UPDATE and DELETE on ``table``."""
    function = f"{table}_append_only"
    forward = f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {function}();
"""
    reverse = f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}; DROP FUNCTION IF EXISTS {function}();"
    return forward, reverse
