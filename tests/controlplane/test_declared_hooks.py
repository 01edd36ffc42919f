"""The declared hooks (controlplane.hooks): every one a lower layer asks for resolves at start-up, or the system
check controlplane.E004 stops it; never a silent default."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from controlplane.checks import declared_hooks_resolve
from controlplane.hooks import REQUIRED_HOOKS


def _errors():
    return [(e.id, e.msg) for e in declared_hooks_resolve(None)]


def test_the_project_declares_every_hook_and_each_resolves():
    assert _errors() == []


@pytest.mark.django_db  # `check` runs every check, the runtime role's too
def test_a_declared_hook_pointing_nowhere_is_a_start_up_error(settings):
    settings.CONTROLPLANE_HOOKS = {**settings.CONTROLPLANE_HOOKS, "status.compute": "oversight.status.no_such_thing"}
    [(check_id, message)] = _errors()
    assert check_id == "controlplane.E004" and "'status.compute'" in message and "cannot be imported" in message
    with pytest.raises(SystemCheckError, match="controlplane.E004"):
        call_command("check")


def test_a_hook_nobody_declared_is_a_start_up_error(settings):
    settings.CONTROLPLANE_HOOKS = {
        name: path for name, path in settings.CONTROLPLANE_HOOKS.items() if name != "bots.kill.cancel_orders"
    }
    assert _errors() == [
        ("controlplane.E004", "settings.CONTROLPLANE_HOOKS: hook 'bots.kill.cancel_orders' is not declared")
    ]


def test_a_declared_name_no_layer_asks_for_is_refused(settings):
    settings.CONTROLPLANE_HOOKS = {
        **settings.CONTROLPLANE_HOOKS,
        "bots.kill.cancel_order": "execution.orders.cancels.cancel_hook",
    }
    assert [message for _, message in _errors()] == [
        "settings.CONTROLPLANE_HOOKS: hook 'bots.kill.cancel_order' is declared but no layer asks for it"
    ]
    assert "bots.kill.cancel_order" not in REQUIRED_HOOKS
