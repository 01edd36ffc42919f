"""A job created over the API runs on a real Celery worker after the request commits."""

import pytest
from django.db import transaction

from bots.models import Job
from controlplane import tenancy
from controlplane.models import Membership
from tests.conftest import client_for
from tests.factories import TenantFactory, UserFactory
from tests.processes import BIN, env_for_test_database, start, stop, wait_for


@pytest.mark.slow
def test_reconcile_job_runs_on_the_worker(django_db_setup, committed_db, tmp_path):
    tenant = TenantFactory(slug="jobs")
    user = UserFactory(username="job-operator")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OPERATOR)
    api = client_for(user)
    bot = api.post("/api/bots", {"name": "j", "strategy": "ma_crossover", "instruments": ["ES"]}, format="json")
    response = api.post("/api/jobs", {"kind": "RECONCILE", "bot_id": bot.json()["id"]}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    process = start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            "default",
            "--pool",
            "solo",
            "-n",
            "jobs@%h",
            "-l",
            "INFO",
        ],
        env_for_test_database(),
        tmp_path / "worker.log",
    )
    try:

        def finished():
            with tenancy.tenant_context(tenant.id), transaction.atomic():
                job = Job.objects.get(pk=job_id)
            return job if job.status in Job.TERMINAL_STATUSES else None

        job = wait_for(finished, timeout=60, what="the job to finish")
    finally:
        stop(process)
    assert (job.status, job.error_code, job.attempts) == ("SUCCEEDED", "", 1), job.error_message
    assert (job.result["status"], job.result["differences"]) == ("MATCHED", {})  # sim books: nothing to disagree on
