"""Runners and jobs over the API, and tenant isolation of every lifecycle endpoint."""

import pytest


from bots import services
from bots.models import Job
from controlplane import tenancy
from tests.assertions import assert_error, audit_actions

pytestmark = pytest.mark.django_db


def test_start_stop_restart_a_runner(api_operator_a, make_bot, tenant_a):
    bot = make_bot()
    started = api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json")
    assert started.status_code == 201, started.content
    runner = started.json()
    assert runner["status"] == "RUNNING" and runner["started_by"] == "operator-a"
    assert runner["trace_id"] == started["X-Trace-Id"]
    body = assert_error(
        api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 409, "RUNNER_ALREADY_ACTIVE"
    )
    assert body["details"]["runner_id"] == runner["id"]
    stopped = api_operator_a.post(f"/api/runners/{runner['id']}/stop", {"reason": "maintenance"}, format="json")
    assert stopped.json()["status"] == "STOPPED" and stopped.json()["stop_reason"] == "maintenance"
    assert_error(api_operator_a.post(f"/api/runners/{runner['id']}/stop", {}, format="json"), 409, "ILLEGAL_TRANSITION")
    restarted = api_operator_a.post(f"/api/runners/{runner['id']}/restart", format="json")
    assert restarted.json()["status"] == "RUNNING" and restarted.json()["restart_count"] == 1
    assert audit_actions(tenant_a, "runner", runner["id"]) == ["runner.start", "runner.stop", "runner.restart"]
    listed = api_operator_a.get(f"/api/runners?bot={bot.id}&status=RUNNING").json()
    assert [r["id"] for r in listed["results"]] == [runner["id"]]


def test_viewer_cannot_start_runners(api_viewer_a, make_bot):
    bot = make_bot()
    assert_error(api_viewer_a.post("/api/runners/start", {"bot_id": bot.id}, format="json"), 403, "PERMISSION_DENIED")


def test_runner_heartbeat_updates_only_a_running_runner(make_bot, owner_a, tenant_a):
    bot = make_bot()
    with tenancy.tenant_context(tenant_a.id):
        runner = services.runner_start(bot_id=bot.id, actor=owner_a)
        assert services.runner_heartbeat(runner_id=runner.id) is True
        services.runner_stop(runner_id=runner.id, actor=owner_a)
        assert services.runner_heartbeat(runner_id=runner.id) is False


def test_a_reconcile_job_runs_and_records_its_failure_code(
    api_operator_a, make_bot, tenant_a, django_capture_on_commit_callbacks
):
    bot = make_bot()
    with tenancy.tenant_context(tenant_a.id):  # a venue whose adapter is no longer installed: the job fails honestly
        type(bot).objects.filter(pk=bot.pk).update(venue="retired-broker")
    created = api_operator_a.post("/api/jobs", {"kind": "RECONCILE", "bot_id": bot.id}, format="json")
    assert created.status_code == 201, created.content
    job = created.json()
    assert job["status"] == "QUEUED" and job["celery_task_id"]
    with tenancy.tenant_context(tenant_a.id):
        finished = services.job_execute(job_id=job["id"])
        assert services.job_execute(job_id=job["id"]) is None  # a second delivery claims nothing
    assert finished.status == "FAILED" and finished.error_code == "RECONCILE_SOURCE_MISSING"
    assert finished.attempts == 1
    detail = api_operator_a.get(f"/api/jobs/{job['id']}").json()
    assert detail["status"] == "FAILED" and detail["error_code"] == "RECONCILE_SOURCE_MISSING"
    retried = api_operator_a.post(f"/api/jobs/{job['id']}/retry", format="json").json()
    assert retried["status"] == "QUEUED" and retried["error_code"] == ""
    cancelled = api_operator_a.post(f"/api/jobs/{job['id']}/cancel", format="json").json()
    assert cancelled["status"] == "CANCELLED"
    assert_error(api_operator_a.post(f"/api/jobs/{job['id']}/cancel", format="json"), 409, "ILLEGAL_TRANSITION")
    with tenancy.tenant_context(tenant_a.id):
        assert services.job_execute(job_id=job["id"]) is None
    assert audit_actions(tenant_a, "job", job["id"]) == [
        "job.create",
        "job.start",
        "job.finish",
        "job.retry",
        "job.cancel",
    ]


def test_a_job_kind_without_a_handler_is_refused(api_operator_a, tenant_a):
    # BACKTEST has its handler now (the backtests app); VERIFY still has none.
    body = assert_error(api_operator_a.post("/api/jobs", {"kind": "VERIFY"}, format="json"), 409, "JOB_HANDLER_MISSING")
    assert body["details"] == {"kind": "VERIFY"}
    assert_error(api_operator_a.post("/api/jobs", {"kind": "RECONCILE"}, format="json"), 400, "VALIDATION_ERROR")
    with tenancy.tenant_context(tenant_a.id):
        assert Job.objects.count() == 0


def test_jobs_list_filters(api_operator_a, make_bot):
    bot = make_bot()
    api_operator_a.post("/api/jobs", {"kind": "RECONCILE", "bot_id": bot.id}, format="json")
    assert api_operator_a.get("/api/jobs?kind=RECONCILE&status=QUEUED").json()["count"] == 1
    assert api_operator_a.get("/api/jobs?status=RUNNING").json()["count"] == 0


# --- tenant isolation: tenant B sees none of tenant A's bots, runners and jobs -------------------------------------


@pytest.fixture
def tenant_a_objects(make_bot, owner_a, tenant_a):
    bot = make_bot()
    with tenancy.tenant_context(tenant_a.id):
        runner = services.runner_start(bot_id=bot.id, actor=owner_a)
        job = services.job_create(kind=Job.Kind.RECONCILE, bot_id=bot.id, actor=owner_a)
    return bot, runner, job


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("get", "/api/bots/{bot}", None),
        ("patch", "/api/bots/{bot}", {"name": "stolen"}),
        ("post", "/api/bots/{bot}/promote", {}),
        ("post", "/api/bots/{bot}/demote", {}),
        ("post", "/api/bots/{bot}/kill", {"reason": "x"}),
        ("post", "/api/bots/{bot}/unkill", {"reason": "x", "positions_decision": "keep_positions"}),
        ("post", "/api/bots/{bot}/reconcile", {}),
        ("post", "/api/runners/start", {"bot_id": "{bot}"}),
        ("post", "/api/runners/{runner}/stop", {}),
        ("post", "/api/runners/{runner}/restart", {}),
        ("post", "/api/jobs", {"kind": "RECONCILE", "bot_id": "{bot}"}),
        ("get", "/api/jobs/{job}", None),
        ("post", "/api/jobs/{job}/cancel", {}),
        ("post", "/api/jobs/{job}/retry", {}),
    ],
)
def test_tenant_b_gets_404_for_tenant_a_objects(api_owner_b, tenant_a_objects, method, path, body, tenant_a):
    bot, runner, job = tenant_a_objects
    ids = {"bot": bot.id, "runner": runner.id, "job": job.id}
    if body:
        body = {key: int(value.format(**ids)) if value == "{bot}" else value for key, value in body.items()}
    response = getattr(api_owner_b, method)(path.format(**ids), body, format="json")
    assert_error(response, 404, "NOT_FOUND")
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        runner.refresh_from_db()
    assert (bot.name, bot.killed, runner.status) == ("bot-1", False, "RUNNING")


def test_tenant_b_lists_are_empty(api_owner_b, tenant_a_objects):
    for path in ("/api/bots", "/api/runners", "/api/jobs"):
        assert api_owner_b.get(path).json()["count"] == 0
