"""Two beats at once (issue 12, "make it permanent"): both real ``celery beat`` processes on the same database and a
broker of the test's own that nothing consumes. One leads and dispatches, the other stands by and dispatches
nothing; when the leader is SIGKILLed the standby takes over within a tick. Neither crashes at start (they used to
race on writing the default entries)."""

import signal
import time

import pytest
import redis

from tests.processes import BIN, env_for_test_database, queue_length, start, stop, throwaway_redis, wait_for  # noqa: F401

pytestmark = pytest.mark.slow

RELAY_EVERY = 1  # seconds: the outbox relay entry, the fastest one, makes dispatches easy to count
TAKEOVER_BOUND = 15  # seconds: the standby's tick (HEARTBEAT_INTERVAL_SECONDS, 1 here) plus process slack


def _relays(server) -> int:
    return queue_length(redis.Redis.from_url(server.url), "default")


def _log(path) -> str:
    return path.read_text() if path.exists() else ""


def test_of_two_beats_one_dispatches_and_the_other_takes_over_when_it_dies(
    django_db_setup, committed_db, throwaway_redis, tmp_path
):
    env = {
        **env_for_test_database(),
        "CELERY_BROKER_URL": throwaway_redis.url,
        "OUTBOX_RELAY_INTERVAL_SECONDS": str(RELAY_EVERY),
        "HEARTBEAT_INTERVAL_SECONDS": "1",
    }
    logs = [tmp_path / "beat-1.log", tmp_path / "beat-2.log"]
    beats = [
        start(
            [
                str(BIN / "celery"),
                "-A",
                "controlplane",
                "beat",
                "-l",
                "INFO",
                "--pidfile",
                str(tmp_path / f"beat-{i}.pid"),
            ],
            env,
            log,
        )
        for i, log in enumerate(logs)
    ]
    try:

        def roles():
            """Per beat: True leading, False standby, None not started yet (from what each logged at start)."""
            return [
                True if "beat: leading" in _log(log) else False if "beat: standby" in _log(log) else None
                for log in logs
            ]

        wait_for(lambda: all(role is not None for role in roles()), timeout=60, what="both beats to start")
        assert all(beat.poll() is None for beat in beats), [_log(log)[-2000:] for log in logs]
        assert sorted(roles()) == [False, True], roles()  # exactly one leads
        leader = roles().index(True)
        standby = 1 - leader

        # One beat sends one relay a second: ten take about ten seconds. Two would take half that.
        wait_for(lambda: _relays(throwaway_redis) >= 1, timeout=30, what="the first dispatch")
        first = time.monotonic()
        wait_for(lambda: _relays(throwaway_redis) >= 11, timeout=60, what="ten more dispatches")
        elapsed = time.monotonic() - first
        assert elapsed >= 10 * RELAY_EVERY * 0.75, f"ten dispatches in {elapsed:.1f}s: more than one beat sends"

        beats[leader].send_signal(signal.SIGKILL)
        beats[leader].wait(timeout=10)
        wait_for(
            lambda: "took the leader lock" in _log(logs[standby]),
            timeout=TAKEOVER_BOUND,
            what="the standby to take over",
        )
        after = _relays(throwaway_redis)
        wait_for(lambda: _relays(throwaway_redis) > after, timeout=TAKEOVER_BOUND, what="dispatches by the new leader")
        assert beats[standby].poll() is None
    finally:
        for beat in beats:
            stop(beat)
        for log in logs:
            print(log.name, _log(log)[-3000:])
