"""The README's run command on a fresh data directory: embedded Postgres and Valkey, web, worker, beat and the
quote collector."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.processes import BASE_DIR, wait_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def _logged_in(port, password):
    """An opener holding the admin's session, logged in through the console's form as a person would."""
    import http.cookiejar
    import re
    import urllib.parse

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = f"http://127.0.0.1:{port}/admin/login/?next=/admin/"
    page = opener.open(login, timeout=5).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": "admin", "password": password, "csrfmiddlewaretoken": csrf})
    opener.open(urllib.request.Request(login, data=form.encode()), timeout=5)
    return opener


def test_make_run_serves_the_portal_and_stops_everything_on_ctrl_c(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL"}}
    env.update(PORT=str(port), CONTROLPLANE_DATA_DIR=str(tmp_path / "data"), EMBEDDED_REDIS_PORT=str(_free_port()))
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "run"], cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        health = wait_for(lambda: _health(port), timeout=180, interval=1, what="GET /api/health")
        assert health["alive"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as response:
            assert response.status == 200
        output = log_path.read_text()
        password = (tmp_path / "data" / "admin-password").read_text().strip()
        assert "Admin user:  admin" in output and password not in output  # a log file never gets the secrets
        assert "API token:   not printed" in output
        # The quote collector runs beside the worker and keeps running (a child that exits is restarted, and
        # would log its start again): it has finished rounds, so its heartbeat is being written.
        wait_for(
            lambda: "quote collector started" in log_path.read_text(), timeout=60, interval=1, what="collect_quotes"
        )
        assert (
            json.loads(_logged_in(port, password).open(f"http://127.0.0.1:{port}/api/me", timeout=5).read())["tenant"]
            == "demo"
        )
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    output = log_path.read_text()
    assert "stopped web, worker, beat and quotes" in output, output[-3000:]
    assert output.count("quote collector started") == 1, "the quote collector exited and was restarted"
    assert "quote collector stopped" in output
    assert "stopping embedded PostgreSQL" in output
    time.sleep(1)
    assert _health(port) is None
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "processes of the stack outlived Ctrl-C"
