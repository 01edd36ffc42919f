import io

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.db.utils import DatabaseError
from rest_framework.test import APIClient

from controlplane import tenancy
from controlplane.models import AuditEvent, Membership, Tenant

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def _bootstrap(*args):
    out = io.StringIO()
    call_command("bootstrap_tenant", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_bootstrap_tenant_creates_everything_and_prints_the_token_last():
    lines = _bootstrap("acme", "--user", "alice", "--email", "alice@acme.test")
    token = lines[-1]
    assert "password (shown once)" in "\n".join(lines)
    tenant = Tenant.objects.get(slug="acme")
    with tenancy.tenant_context(tenant.id):
        assert Membership.objects.get(user__username="alice").role == "owner"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/me").json()["tenant"] == "acme"


def test_bootstrap_tenant_twice_changes_nothing_and_prints_no_token_the_second_time():
    first = _bootstrap("acme", "--user", "alice")
    with tenancy.tenant_context(Tenant.objects.get(slug="acme").id):
        counts = (Tenant.objects.count(), Membership.objects.count(), AuditEvent.objects.count())
    second = _bootstrap("acme", "--user", "alice")
    with tenancy.tenant_context(Tenant.objects.get(slug="acme").id):
        assert counts == (Tenant.objects.count(), Membership.objects.count(), AuditEvent.objects.count())
    assert first[-1] not in "\n".join(second) and "none issued" in second[-1]  # tokens are shown once
    assert "password unchanged" in "\n".join(second)


def test_bootstrap_tenant_refuses_a_bad_slug():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="slug"):
        _bootstrap("Not A Slug", "--user", "bob")
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("alias", ["default", "owner"])
@pytest.mark.parametrize(
    "statement", ["UPDATE controlplane_auditevent SET action = 'rewritten'", "DELETE FROM controlplane_auditevent"]
)
def test_audit_events_cannot_be_updated_or_deleted(alias, statement):
    """The runtime role lacks the grant; even the table owner is stopped by the trigger."""
    with tenancy.tenant_context(None):
        AuditEvent.unscoped.using(alias).create(
            tenant=None, actor="test", action="bot.kill", resource_type="bot", resource_id="7", trace_id="trace-audit-1"
        )
        with pytest.raises(DatabaseError, match="append-only|permission denied"):
            with transaction.atomic(using=alias):
                with connections[alias].cursor() as cursor:
                    cursor.execute(statement)
        assert AuditEvent.unscoped.using(alias).filter(action="bot.kill").count() == 1
