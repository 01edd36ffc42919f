"""Helpers for tests that start real processes against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connections

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def database_url(alias: str) -> str:
    s = connections[alias].settings_dict
    host, port = s["HOST"], s["PORT"]
    if host.startswith("/"):
        return f"postgres://{s['USER']}@/{s['NAME']}?host={host}"
    return f"postgres://{s['USER']}@{host or '127.0.0.1'}:{port or 5432}/{s['NAME']}"


def env_for_test_database() -> dict[str, str]:
    """The environment a child process needs to work on this test run's database."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url("default")
    env["DATABASE_OWNER_URL"] = database_url("owner")
    env["HEARTBEAT_INTERVAL_SECONDS"] = "1"
    return env


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen, timeout: float = 20) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_for(predicate, timeout: float, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# kombu's Redis transport names a queue's priority lists "<queue>\x06\x16<priority>".
_PRIORITY_SEP = "\x06\x16"


def queue_length(broker, queue: str) -> int:
    """Messages waiting in one queue (all its priority lists), and in no other queue that shares its prefix."""
    keys = [queue.encode(), *broker.scan_iter(match=f"{queue}{_PRIORITY_SEP}*")]
    return sum(broker.llen(key) for key in keys if broker.type(key) == b"list")


def forget_queue(broker, queue: str) -> None:
    """Remove a throwaway test queue from the broker, with any message a killed worker left unacknowledged on it:
    kombu would restore that message to the queue after its visibility timeout (an hour), into whatever run then
    uses the same Redis database."""
    for tag, raw in broker.hgetall("unacked").items():
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key == queue:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)
    broker.delete(queue, *broker.scan_iter(match=f"{queue}{_PRIORITY_SEP}*"), f"_kombu.binding.{queue}",
                  f"_kombu.binding_permanent.{queue}")
