"""Every task reaches its queue through CELERY_TASK_ROUTES, the one place routing lives: a ``queue`` attribute on a
task is deprecated in Celery 5 and ignored from Celery 6, which would silently send ticks, replays and OMS runs to
the default queue, where no worker of theirs listens."""

import pytest

import backtests.tasks  # noqa: F401 (what a worker's autodiscovery imports)
import execution.orders.tasks  # noqa: F401
import execution.tasks  # noqa: F401
import integrations.tasks  # noqa: F401
import oversight.tasks  # noqa: F401
from controlplane.celery import app


@pytest.mark.parametrize(
    ("task", "queue"),
    [("execution.tick_batch", "ticks"), ("execution.replay_runner", "backtests"), ("execution.oms_process", "oms")],
)
def test_a_task_is_routed_to_its_queue_by_the_routes_setting(task, queue):
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_no_task_names_its_queue_itself():
    own_queue = sorted(name for name, task in app.tasks.items() if "queue" in type(task).__dict__)
    assert own_queue == []
