"""Admin actions call the lifecycle services and show their refusals with the same codes."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from bots.models import Bot, Runner, Stage
from controlplane import tenancy

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_a(client, tenant_a, owner_a, settings):
    # The manifest exists only after collectstatic; pages render with plain static URLs here.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    root = get_user_model().objects.create_superuser("root", "root@example.com", "correct horse battery staple")
    client.force_login(root)
    return client


def run_action(client, model, action, ids):
    response = client.post(f"/admin/bots/{model}/", {"action": action, "_selected_action": ids}, follow=True)
    assert response.status_code == 200
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_admin_lists_bots_with_filters(admin_client_a, make_bot):
    make_bot(name="visible-bot")
    response = admin_client_a.get("/admin/bots/bot/?stage__exact=LAB&trading=ok")
    assert response.status_code == 200 and b"visible-bot" in response.content


def test_admin_start_and_kill_call_the_services(admin_client_a, make_bot, tenant_a):
    bot = make_bot()
    assert "start done" in run_action(admin_client_a, "bot", "start_runner", [bot.id])[0]
    assert "kill done" in run_action(admin_client_a, "bot", "kill", [bot.id])[0]
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.get(pk=bot.pk).killed
        runner = Runner.objects.get(bot=bot)
    assert "stop done" in run_action(admin_client_a, "runner", "stop", [runner.id])[0]
    refused = run_action(admin_client_a, "runner", "restart", [runner.id])[0]
    assert "BOT_KILLED" in refused and "Fix:" in refused and "trace" in refused


def test_admin_promote_shows_the_failing_gate(admin_client_a, make_bot, tenant_a):
    bot = make_bot()
    message = run_action(admin_client_a, "bot", "promote", [bot.id])[0]
    assert "PROMOTION_GATE_FAILED" in message and "backtest_passed" in message
    paper = make_bot(name="paper", stage=Stage.BACKTESTED)
    assert "promote done" in run_action(admin_client_a, "bot", "promote", [paper.id])[0]
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.get(pk=paper.pk).stage == Stage.PAPER


def cell(page: str, bot_name: str, field: str) -> str:
    """One column of one bot's row on the bot list, as rendered."""
    [row] = [row for row in page.split("<tr")[1:] if f">{bot_name}<" in row]
    return " ".join(re.search(rf'class="field-{field} .*?</td>', row, re.S).group(0).split())


def test_a_bot_that_is_not_killed_shows_no_alarm_and_a_killed_one_does(admin_client_a, make_bot):
    make_bot(name="calm-bot")
    killed = make_bot(name="dead-bot")
    run_action(admin_client_a, "bot", "kill", [killed.id])
    page = admin_client_a.get("/admin/bots/bot/").content.decode()
    quiet = [
        cell(page, "calm-bot", "killed"),
        cell(page, "calm-bot", "reconcile_mismatch"),
        cell(page, "dead-bot", "reconcile_mismatch"),
    ]
    for column in quiet:
        assert "> no <" in column and "bg-red-100" not in column and "close_small" not in column
    alarm = cell(page, "dead-bot", "killed")
    assert "> KILLED <" in alarm and "bg-red-100" in alarm


def test_the_flag_columns_stay_sortable(admin_client_a, make_bot):
    make_bot(name="calm-bot")
    page = admin_client_a.get("/admin/bots/bot/").content.decode()
    assert re.search(r'<th[^>]*class="[^"]*sortable[^"]*column-killed', page)
