"""devstack restarts a child of the portal that exits, with a backoff and a limit, instead of stopping everything.

The children are real processes (small Python programs standing in for web, worker and beat)."""

import sys
import threading

from controlplane.devstack import RestartPolicy, supervise
from tests.processes import wait_for

FAST = RestartPolicy(first_delay=0.1, max_delay=0.4, limit=3, window=60)
STEADY = [sys.executable, "-c", "import time; time.sleep(120)"]


def _run_in_background(commands, policy=FAST):
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.update(code=supervise(commands, {}, stop.is_set, policy, 0.05)))
    thread.start()
    return stop, thread, result


def test_a_child_that_exits_once_is_started_again_and_the_others_keep_running(tmp_path, capfd):
    marker = tmp_path / "started-once"
    flaky = [
        sys.executable,
        "-c",
        f"import pathlib, sys, time; p = pathlib.Path({str(marker)!r})\n"
        "if not p.exists(): p.touch(); sys.exit(3)\n"
        "(p.parent / 'second-run').touch(); time.sleep(120)",
    ]
    stop, thread, result = _run_in_background({"beat": flaky, "web": STEADY})
    try:
        wait_for(lambda: (tmp_path / "second-run").exists(), timeout=30, what="beat to be started again")
    finally:
        stop.set()
        thread.join(timeout=30)
    output = capfd.readouterr().out
    assert "[devstack] beat exited with 3; restarting it in 0.1 s (restart 1 of at most 3 in 60 s)" in output
    assert "[devstack] restarted beat" in output
    assert "web exited" not in output and "giving up" not in output
    assert result == {"code": 0}


def test_a_child_that_keeps_exiting_is_restarted_with_a_growing_delay_then_everything_stops(capfd):
    failing = [sys.executable, "-c", "import sys; sys.exit(7)"]
    stop, thread, result = _run_in_background({"worker": failing, "web": STEADY})
    thread.join(timeout=60)
    stop.set()
    assert not thread.is_alive()
    output = capfd.readouterr().out
    delays = [
        line.split("restarting it in ")[1].split(" s")[0]
        for line in output.splitlines()
        if line.startswith("[devstack] worker exited with 7; restarting")
    ]
    assert delays == ["0.1", "0.2", "0.4"]
    assert "[devstack] worker exited with 7 after 3 restarts in 60 s; giving up and stopping everything" in output
    assert result == {"code": 1}


def test_the_default_policy_backs_off_from_one_second_to_thirty_and_allows_five_restarts_in_five_minutes():
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert (policy.limit, policy.window) == (5, 300)
