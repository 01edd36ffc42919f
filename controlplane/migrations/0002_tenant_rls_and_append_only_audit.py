from django.db import migrations

from controlplane.rls import CREATE_FUNCTIONS_SQL, DROP_FUNCTIONS_SQL, EnableTenantRLS, append_only_trigger_sql

AUDIT_TRIGGER_SQL, AUDIT_TRIGGER_REVERSE_SQL = append_only_trigger_sql("controlplane_auditevent")


class Migration(migrations.Migration):
    dependencies = [("controlplane", "0001_initial")]

    operations = [
        migrations.RunSQL(CREATE_FUNCTIONS_SQL, DROP_FUNCTIONS_SQL),
        # A user sees their own memberships in every tenant (to pick one), and all of the current tenant's.
        EnableTenantRLS(
            "membership",
            predicate="tenant_id = current_tenant_id() OR user_id = current_app_user_id()",
            check="tenant_id = current_tenant_id()",
        ),
        # Platform-wide events (no tenant) are visible to every tenant; tenant events only to their tenant.
        EnableTenantRLS("auditevent", predicate="tenant_id = current_tenant_id() OR tenant_id IS NULL"),
        migrations.RunSQL(AUDIT_TRIGGER_SQL, AUDIT_TRIGGER_REVERSE_SQL),
    ]
