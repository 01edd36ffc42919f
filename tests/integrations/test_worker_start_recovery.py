"""A worker that serves the oms queue starts with a recovery sweep (``_recover_at_worker_start``): an order a crash
left SUBMITTING is resolved by the next worker that comes up, with no beat running. A worker on other queues
enqueues nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.db import transaction
from django.utils import timezone

from controlplane import tenancy
from controlplane.celery import app as celery_app
from controlplane.models import Membership
from execution.orders import oms, writer
from execution.orders.intents import LegSpec, submit_intent
from execution.models import Order, TradeIntent
from integrations.providers.tradovate.fake import fill, fill_fee, order_found, serve_session
from tests.factories import TenantFactory, UserFactory
from tests.integrations.live_bots import es_instrument, live_tradovate_bot
from tests.processes import BIN, env_for_test_database, queue_length, start, stop, wait_for
from tests.status_fixtures import make_system_ok

pytestmark = pytest.mark.slow


def _crashed_order(tenant, owner, httpserver, settings) -> Order:
    """What a worker killed between send and record leaves: the order recorded SUBMITTING by the OMS, no venue id,
    last touched well before OMS_UNACKNOWLEDGED_AFTER_SECONDS (accepted while the system status was OK, as a LIVE
    order that opens a position must be)."""
    es_instrument()
    bot = live_tradovate_bot(tenant=tenant, owner=owner)
    settings.INTEGRATION_BASE_URLS = {"tradovate": httpserver.url_for("").rstrip("/")}
    serve_session(httpserver)
    make_system_ok(tenant=tenant, owner=owner, httpserver=httpserver, settings=settings, verify=("tradovate",))
    with tenancy.tenant_context(tenant.id):
        with transaction.atomic():
            intent = submit_intent(
                bot=bot,
                legs=[
                    LegSpec(
                        venue="tradovate",
                        symbol="ES",
                        side="buy",
                        quantity=Decimal(1),
                        order_type="limit",
                        limit_price=Decimal("6000.25"),
                    )
                ],
                idempotency_key="crashed-1",
                source="api",
                actor_name="test",
            ).intent
        with writer.oms_writes():
            claimed = [TradeIntent.objects.select_related("bot").get(pk=intent.pk)]
            accepted, _ = oms._accept_or_reject_batch(claimed, tenant_id=intent.tenant_id)
            assert accepted == [intent.pk]
            past = timezone.now() - timedelta(seconds=settings.OMS_UNACKNOWLEDGED_AFTER_SECONDS * 2)
            Order.objects.filter(intent=intent).update(created_at=past, updated_at=past)
        with transaction.atomic():
            return Order.objects.get(intent=intent)


def _oms_queue_length(broker: redis.Redis) -> int:
    # The "oms" queue only: throwaway queues such as the crash test's "oms-crash-…" share its prefix.
    return queue_length(broker, "oms")


def _worker(queues: str, env: dict, log_path):
    return start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            queues,
            "--pool",
            "solo",
            "-n",
            f"recovery-{queues.replace(',', '-')}@%h",
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        env,
        log_path,
    )


def test_a_fresh_oms_worker_resolves_a_crashed_order_without_beat_and_other_workers_enqueue_nothing(
    django_db_setup, committed_db, httpserver, settings, tmp_path
):
    tenant, owner = TenantFactory(slug="worker-start"), UserFactory(username="worker-start")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    order = _crashed_order(tenant, owner, httpserver, settings)
    assert (order.status, order.venue_order_id) == (Order.Status.SUBMITTING, "")
    serve_session(httpserver)
    order_found(
        httpserver, client_order_id=order.client_order_id, order_id=9200, fills=[fill(88, 9200)], fees=[fill_fee(88)]
    )

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    celery_app.control.purge()  # leftovers of earlier tests must not be mistaken for the sweep
    assert _oms_queue_length(broker) == 0
    env = {
        **env_for_test_database(),
        "INTEGRATION_BASE_URLS": f"tradovate={httpserver.url_for('').rstrip('/')}",
        "CREDENTIALS_ENCRYPTION_KEYS": ",".join(settings.CREDENTIALS_ENCRYPTION_KEYS),
    }

    others = _worker("ticks,backtests", env, tmp_path / "others.log")
    try:
        wait_for(lambda: b"ready." in (tmp_path / "others.log").read_bytes(), timeout=180, what="the ticks worker")
        # Celery sends worker_ready, and so runs its receivers' publishes, before it logs "ready.".
        assert _oms_queue_length(broker) == 0, (tmp_path / "others.log").read_text()[-3000:]
    finally:
        stop(others)

    worker = _worker("oms", env, tmp_path / "oms.log")
    try:

        def resolved():
            # Wait for the terminal state asserted below: the sweep passes through WORKING on its way to FILLED.
            with tenancy.tenant_context(tenant.id), transaction.atomic():
                current = Order.objects.get(pk=order.pk)
            return current if current.status not in Order.OPEN_STATUSES else None

        current = wait_for(resolved, timeout=30, what="the worker-start sweep")
    finally:
        stop(worker)
    log = (tmp_path / "oms.log").read_text()
    assert "execution.oms_recover_all_tenants" in log and "execution.oms_recover" in log, log[-3000:]
    assert (current.status, current.venue_order_id, current.filled_quantity) == (Order.Status.FILLED, "9200", 1)
    assert [r.path for r, _ in httpserver.log].count("/order/placeorder") == 0
