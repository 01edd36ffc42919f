"""The portal (devstack: web, worker, beat) on a throwaway Postgres that is stopped for ~15 s and started again.

During the outage /api/health answers 503 in the error shape and status says BLOCKED by the database; once
Postgres is back, within the bounds below, health is 200, beat and worker write fresh heartbeats, and devstack
restarted nothing: every process rode the outage out on its own.
"""

import datetime as dt
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.processes import BASE_DIR, BIN, wait_for
from tests.throwaway_postgres import ThrowawayPostgres, free_port

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 15
ANSWER_BOUND_SECONDS = 3  # an answer during the outage: DATABASE_CONNECT_TIMEOUT (2 s here) plus slack
RECOVERY_BOUND_SECONDS = 30  # from Postgres accepting connections to health 200 and fresh heartbeats of both


def _get(port: int, path: str, token: str | None = None) -> tuple[int, dict, float] | None:
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), time.monotonic() - started
    except OSError:
        return None


def _fresh_heartbeats(cluster: ThrowawayPostgres, since: dt.datetime) -> set[str]:
    rows = cluster.query(
        "SELECT kind FROM controlplane_processheartbeat WHERE last_seen_at > %s", [since], database="controlplane"
    )
    return {kind for (kind,) in rows}


@pytest.fixture
def cluster():
    cluster = ThrowawayPostgres()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def portal(cluster, tmp_path):
    from controlplane.dbroles import provision

    provision(cluster.url(), database="controlplane", owner="cp_owner", runtime="cp_app")
    port = free_port()
    # No REDIS_URL: devstack starts a Valkey of its own, so this portal's worker takes no other test's messages.
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        {
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "CELERY_CONCURRENCY": "1",
            "EMBEDDED_REDIS_PORT": str(free_port()),
            "DATABASE_URL": cluster.url("cp_app", "controlplane"),
            "DATABASE_OWNER_URL": cluster.url("cp_owner", "controlplane"),
            "DATABASE_CONNECT_TIMEOUT": "2",
            "HEARTBEAT_INTERVAL_SECONDS": "1",
            "CONTROLPLANE_DATA_DIR": str(tmp_path / "data"),
        }
    )
    log_path = tmp_path / "portal.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "python"), "-m", "controlplane.devstack", "run"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield port, process, log_path, env
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        print(log_path.read_text()[-6000:])


def test_the_portal_rides_out_a_postgres_restart_and_reports_it_while_it_lasts(cluster, portal):
    port, process, log_path, env = portal
    health = wait_for(lambda: _get(port, "/api/health"), timeout=180, interval=1, what="the portal to answer")
    assert health[0] == 200, health
    # make run prints the admin's token only to a terminal; a member of its own tenant is made for the probe.
    made = subprocess.run(
        [str(BIN / "python"), "manage.py", "bootstrap_tenant", "outage", "--user", "outage-probe"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip().splitlines()[-1]
    up_since = dt.datetime.now(dt.UTC)
    wait_for(
        lambda: _fresh_heartbeats(cluster, up_since) >= {"beat", "worker"},
        timeout=60,
        what="beat and worker heartbeats before the outage",
    )

    cluster.stop()
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    seen = 0
    while time.monotonic() < outage_ends:
        status, body, seconds = _get(port, "/api/health")
        assert (status, body["error_code"], body["details"]) == (503, "SERVICE_UNAVAILABLE", {"component": "database"})
        assert set(body) == {"error_code", "message", "suggested_fix", "trace_id", "details"}
        assert seconds < ANSWER_BOUND_SECONDS
        status, body, seconds = _get(port, "/api/system/status", token)
        assert status == 200 and body["status"] == "BLOCKED", body
        assert [b["component"] for b in body["blockers"]] == ["database"]
        assert seconds < ANSWER_BOUND_SECONDS
        status, body, _ = _get(port, "/api/bots", token)
        assert (status, body["error_code"]) == (503, "SERVICE_UNAVAILABLE")
        seen += 1
        time.sleep(0.5)  # pacing the probes, not waiting for a state
    assert seen >= 5
    assert process.poll() is None, "devstack stopped during the outage"

    cluster.start()
    back_at = dt.datetime.now(dt.UTC)
    wait_for(
        lambda: (_get(port, "/api/health") or (None,))[0] == 200,
        timeout=RECOVERY_BOUND_SECONDS,
        what="health 200 after Postgres came back",
    )
    wait_for(
        lambda: _fresh_heartbeats(cluster, back_at) >= {"beat", "worker"},
        timeout=RECOVERY_BOUND_SECONDS,
        what="fresh beat and worker heartbeats after Postgres came back",
    )
    status, body, _ = _get(port, "/api/system/status", token)
    assert status == 200 and "database" not in [b["component"] for b in body["blockers"]], body
    assert _get(port, "/api/bots", token)[0] == 200
    devstack_lines = [line for line in log_path.read_text().splitlines() if line.startswith("[devstack]")]
    assert not [line for line in devstack_lines if "exited with" in line or "restarted" in line], devstack_lines
    assert process.poll() is None
