"""At most once, with a real crash: a Celery worker running the OMS on a LIVE Tradovate bot is SIGKILLed after
Tradovate received ``placeorder`` and before the worker recorded the answer. The recovery sweep then finds the
order by its clOrdId: exactly one order reached the venue, and ours carries the venue's id and status."""

import json
import os
import signal
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.db import transaction
from werkzeug import Response

from controlplane import tenancy
from controlplane.models import Membership
from execution.orders import oms, recovery
from execution.orders.intents import LegSpec, submit_intent
from execution.models import Fill, Order, TradeIntent
from execution.tasks import oms_process
from integrations.providers.futures_contracts import tradovate_symbol
from integrations.providers.tradovate.fake import fill, fill_fee, order_found, serve_session
from tests.factories import TenantFactory, UserFactory
from tests.integrations.live_bots import es_instrument, live_tradovate_bot
from tests.processes import BIN, env_for_test_database, forget_queue, start, stop, wait_for
from tests.status_fixtures import make_system_ok

pytestmark = pytest.mark.slow


def test_a_worker_killed_between_send_and_record_leaves_one_order_at_the_venue_and_the_sweep_records_it(
    django_db_setup, committed_db, httpserver, settings, tmp_path
):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    settings.INTEGRATION_BASE_URLS = {"tradovate": httpserver.url_for("").rstrip("/")}
    tenant = TenantFactory(slug="crash-oms")
    owner = UserFactory(username="crash-oms")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    es_instrument()
    bot = live_tradovate_bot(tenant=tenant, owner=owner)
    queue = f"oms-crash-{uuid.uuid4().hex[:8]}"
    env = {
        **env_for_test_database(),
        "INTEGRATION_BASE_URLS": f"tradovate={httpserver.url_for('').rstrip('/')}",
        "INTEGRATION_TIMEOUT_SECONDS": "60",
        "CREDENTIALS_ENCRYPTION_KEYS": ",".join(settings.CREDENTIALS_ENCRYPTION_KEYS),
    }
    worker = start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "-n",
            f"{queue}@%h",
            "-l",
            "INFO",
        ],
        env,
        tmp_path / "worker.log",
    )
    try:
        # The status the worker checks must still be fresh when it takes the intent (HEARTBEAT_STALE_SECONDS): a
        # loaded machine took 30 s to start the worker after the status was made OK, and the OMS refused, as it
        # must, on the stale heartbeats. So the worker is up before the status is made and the intent submitted.
        wait_for(lambda: b" ready." in (tmp_path / "worker.log").read_bytes(), timeout=180, what="the OMS worker")
        serve_session(httpserver)
        make_system_ok(tenant=tenant, owner=owner, httpserver=httpserver, settings=settings, verify=("tradovate",))
        with tenancy.tenant_context(tenant.id), transaction.atomic():
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
                idempotency_key="crash-1",
                source="api",
                actor_name="test",
            ).intent

        serve_session(httpserver)
        received, release, placed = threading.Event(), threading.Event(), []

        def place_and_hang(request):
            placed.append(json.loads(request.data))
            received.set()
            release.wait(timeout=60)  # Tradovate has the order; its answer never reaches the (killed) worker
            return Response(json.dumps({"orderId": 9100}), 200, content_type="application/json")

        httpserver.expect_request("/order/placeorder", method="POST").respond_with_handler(place_and_hang)

        oms_process.apply_async(kwargs={"tenant_id": tenant.id}, queue=queue)
        assert received.wait(timeout=90), (tmp_path / "worker.log").read_text()[-3000:]
        os.killpg(worker.pid, signal.SIGKILL)  # between the send and the record
        worker.wait(timeout=10)
    finally:
        release.set()
        stop(worker)
        forget_queue(redis.Redis.from_url(settings.CELERY_BROKER_URL), queue)

    with tenancy.tenant_context(tenant.id), transaction.atomic():
        order = Order.objects.get(intent=intent)
    assert (order.status, order.venue_order_id) == (Order.Status.SUBMITTING, "")
    assert [p["clOrdId"] for p in placed] == [order.client_order_id]
    assert placed[0]["symbol"] == tradovate_symbol("ES")

    order_found(
        httpserver, client_order_id=order.client_order_id, order_id=9100, fills=[fill(77, 9100)], fees=[fill_fee(77)]
    )
    with tenancy.tenant_context(tenant.id):
        outcome = recovery.resolve_unacknowledged_orders(older_than=timedelta(0))
        oms.process_pending_intents()  # nothing is PENDING: nothing more is sent
        again = recovery.resolve_unacknowledged_orders(older_than=timedelta(0))
        with transaction.atomic():
            order.refresh_from_db()
            intent.refresh_from_db()
            fees = list(Fill.objects.filter(order=order).values_list("fee", flat=True))
    assert outcome["found"] == [order.client_order_id] and again == {"found": [], "not_found": [], "unresolved": []}
    assert (order.status, order.venue_order_id, order.filled_quantity) == (Order.Status.FILLED, "9100", 1)
    assert intent.status == TradeIntent.Status.FILLED and fees == [Decimal("2.48")]
    assert len(placed) == 1 and [r.path for r, _ in httpserver.log].count("/order/placeorder") == 1
