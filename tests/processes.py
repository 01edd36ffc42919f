"""Helpers for tests that start real processes against the test database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
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
    return subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


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
    broker.delete(
        queue,
        *broker.scan_iter(match=f"{queue}{_PRIORITY_SEP}*"),
        f"_kombu.binding.{queue}",
        f"_kombu.binding_permanent.{queue}",
    )


class ThrowawayRedis:
    """A redis-server on a free loopback port, nothing persisted; ``freeze`` makes it hung (SIGSTOP)."""

    def __init__(self, tmp_path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp_path = tmp_path
        self.restart()

    def restart(self):
        """Start it (again, after ``stop``) on the same port, empty."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, what="throwaway redis-server")
        self.frozen = False

    def _answers(self):
        try:
            with redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5) as client:
                return client.ping()
        except redis.RedisError:
            return False

    def freeze(self):
        os.kill(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        os.kill(self.process.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self):
        if self.process.poll() is not None:
            return
        if self.frozen:
            self.thaw()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def throwaway_redis(tmp_path, settings):
    """A redis-server of this test's own, with the cache, throttles, breakers, the status probe and the broker
    check pointed at it: a test may SIGSTOP it (``freeze``) or stop it, never the machine's shared Redis. (Celery's
    app keeps the broker it was configured with: what a test publishes still goes to the shared one.)"""
    from controlplane import redis_clients

    server = ThrowawayRedis(tmp_path)
    settings.REDIS_URL = server.url
    settings.CELERY_BROKER_URL = server.url
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": server.url}}
    settings.INTEGRATION_ENV_CREDENTIALS = {**settings.INTEGRATION_ENV_CREDENTIALS, "REDIS_URL": server.url}
    redis_clients.forget_failures()
    yield server
    server.stop()
    redis_clients.forget_failures()


class TcpGate:
    """A port that refuses connections while closed and forwards them to ``target`` once opened: a database that
    is unreachable when a process starts and comes back later, without stopping the server other tests share."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]  # closed until open(): connects to it are refused
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._spawn(self._accept)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
