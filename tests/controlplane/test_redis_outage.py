"""Redis stopped or hung (issue 12, item 1): every use is bounded and fails closed.

Each test starts a throwaway redis-server of its own (tests.processes.throwaway_redis) and points the settings under
test at it; "hung" is that server stopped by SIGSTOP (it accepts connections and never answers), "stopped" is it
terminated.
"""

import time

import pytest

from bots.models import Job
from controlplane import tenancy
from oversight.status import system_status
from tests.processes import throwaway_redis, wait_for  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

MARGIN = 1.0  # seconds of our own work on top of one bounded Redis timeout, on a loaded 2-core machine


def _timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def _status(tenant):
    with tenancy.tenant_context(tenant.id):
        return _timed(system_status)


def _redis_problem(body):
    return [b for b in body["blockers"] if b["component"] == "redis"]


@pytest.mark.parametrize("outage", ["hung", "stopped"])
def test_with_redis_down_system_status_is_degraded_within_its_probe_bound(throwaway_redis, tenant_a, settings, outage):
    throwaway_redis.freeze() if outage == "hung" else throwaway_redis.stop()
    body, elapsed = _status(tenant_a)
    assert body["status"] != "OK" and body["autonomy_allowed"] is False
    assert _redis_problem(body) and _redis_problem(body)[0]["severity"] == "degrading"
    assert elapsed < settings.STATUS_PROBE_TIMEOUT_SECONDS + MARGIN, f"status took {elapsed:.1f}s"


def test_once_a_hung_redis_answers_again_status_stops_naming_it(throwaway_redis, tenant_a):
    throwaway_redis.freeze()
    assert _redis_problem(_status(tenant_a)[0])
    throwaway_redis.thaw()
    wait_for(lambda: not _redis_problem(_status(tenant_a)[0]), timeout=15, what="status without the redis problem")


def test_with_redis_hung_health_is_fast_and_reads_keep_working(throwaway_redis, api_owner_a, settings):
    throwaway_redis.freeze()
    health, elapsed = _timed(lambda: api_owner_a.get("/api/health"))
    assert health.status_code == 200 and elapsed < MARGIN
    bots, elapsed = _timed(lambda: api_owner_a.get("/api/bots"))
    assert bots.status_code == 200, bots.content
    # One bounded timeout (the throttle or the status probe, whichever asks first), then Redis is not asked again.
    assert elapsed < settings.STATUS_PROBE_TIMEOUT_SECONDS + settings.REDIS_TIMEOUT_SECONDS + MARGIN, elapsed


def test_with_redis_hung_the_throttle_still_counts_in_memory(throwaway_redis, api_owner_a, monkeypatch):
    from controlplane.throttling import ResilientUserRateThrottle

    monkeypatch.setattr(ResilientUserRateThrottle, "rate", "3/minute", raising=False)
    throwaway_redis.freeze()
    answers = [api_owner_a.get("/api/me").status_code for _ in range(5)]
    assert answers[:3] == [200, 200, 200] and answers[3:] == [429, 429], answers


@pytest.mark.parametrize("outage", ["hung", "stopped"])
def test_with_redis_down_a_job_is_accepted_with_its_outbox_row_within_a_bound(
    throwaway_redis, api_operator_a, owner_a, tenant_a, settings, outage, django_capture_on_commit_callbacks
):
    from bots import services
    from controlplane.models import OutboxMessage

    with tenancy.tenant_context(tenant_a.id):
        bot = services.bot_create(
            actor=owner_a,
            name="bot-1",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
    throwaway_redis.freeze() if outage == "hung" else throwaway_redis.stop()
    with django_capture_on_commit_callbacks(execute=True):
        answer, elapsed = _timed(
            lambda: api_operator_a.post("/api/jobs", {"kind": "RECONCILE", "bot_id": bot.id}, format="json")
        )
    assert answer.status_code == 201, answer.content
    with tenancy.tenant_context(tenant_a.id):
        job = Job.objects.get(pk=answer.json()["id"])
        [message] = OutboxMessage.objects.all()
    assert job.status == Job.Status.QUEUED and message.kwargs["job_id"] == job.id
    # Not sent: skipped (Redis was known down, the throttle found out first) or tried once and failed; the relay's now.
    assert message.sent_at is None and message.attempts <= 1
    # At most one send bounded by the broker's socket timeout (and its one immediate retry).
    assert elapsed < 2 * settings.REDIS_TIMEOUT_SECONDS + MARGIN, elapsed


def test_with_redis_hung_verify_answers_json_within_a_bound(throwaway_redis, api_operator_a, settings):
    throwaway_redis.freeze()
    answer, elapsed = _timed(
        lambda: api_operator_a.post("/api/integrations/verify", {"provider": "redis"}, format="json")
    )
    assert answer["Content-Type"].startswith("application/json"), answer.content[:200]
    assert answer.status_code < 500 and answer.json()["status"] == "failed", answer.content
    assert elapsed < 2 * settings.REDIS_TIMEOUT_SECONDS + MARGIN, elapsed
    everything, elapsed = _timed(lambda: api_operator_a.post("/api/integrations/verify", {}, format="json"))
    assert everything["Content-Type"].startswith("application/json") and everything.status_code < 500
    assert elapsed < 2 * settings.REDIS_TIMEOUT_SECONDS + MARGIN, elapsed
