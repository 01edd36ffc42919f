"""Which tenants background work visits, and the one helper that fans a task out per tenant."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from controlplane.celery import app, fan_out_per_tenant
from controlplane.models import Tenant
from controlplane.selectors import active_tenant_ids, all_tenant_ids
from integrations.tasks import reverify_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def suspended(tenant_b):
    Tenant.objects.filter(pk=tenant_b.pk).update(status=Tenant.Status.SUSPENDED)
    return tenant_b


def test_work_that_starts_things_skips_a_suspended_tenant_and_work_that_makes_things_safe_does_not(tenant_a, suspended):
    assert active_tenant_ids() == [tenant_a.id]
    assert all_tenant_ids() == sorted([tenant_a.id, suspended.id])


def test_a_fan_out_sends_one_message_per_tenant_to_the_named_queue_each_expiring(tenant_a, suspended):
    queue = f"test-fanout-{uuid.uuid4().hex[:8]}"
    before = timezone.now()
    assert fan_out_per_tenant(reverify_tenant, tenant_ids=all_tenant_ids(), queue=queue, expires=30) == 2
    received = []
    with app.connection_for_read() as connection:
        inbox = connection.SimpleQueue(queue)
        try:
            for _ in range(2):
                message = inbox.get(block=True, timeout=10)
                message.ack()
                received.append(message)
            with pytest.raises(inbox.Empty):
                inbox.get_nowait()
        finally:
            inbox.queue.delete()
            inbox.close()
    assert {m.headers["task"] for m in received} == {"integrations.reverify_tenant"}
    assert sorted(m.payload[1]["tenant_id"] for m in received) == sorted([tenant_a.id, suspended.id])
    for message in received:
        expires = datetime.fromisoformat(message.headers["expires"])
        assert before + timedelta(seconds=29) <= expires <= timezone.now() + timedelta(seconds=30)
