"""The console reads as English and links what it names: human plurals, trace ids as links to the explorer, flags
that are drawn as alarms only when they are one."""

import re

import pytest
from django.apps import apps

PROJECT_APPS = {"controlplane", "integrations", "traces", "bots", "execution", "backtests", "observatory"}

# What Django's "add an s" gives for words it does not know: settingss, matrixs, batchs, switchs, inventorys.
MACHINE_PLURAL = re.compile(r"(ss|xs|chs|shs|[^aeiou]ys)$")


def project_models():
    return [model for model in apps.get_models() if model._meta.app_label in PROJECT_APPS]


@pytest.mark.parametrize("model", project_models(), ids=lambda model: model._meta.label)
def test_no_model_has_a_machine_made_plural(model):
    assert not MACHINE_PLURAL.search(str(model._meta.verbose_name_plural))


@pytest.mark.parametrize(
    ("label", "plural"),
    [
        ("backtests.BacktestMatrix", "backtest matrices"),
        ("backtests.ClassificationSettings", "classification settings"),
        ("execution.TickBatch", "tick batches"),
        ("traces.ProfitVariables", "profit variables"),
        ("bots.TenantKillSwitch", "tenant kill switches"),
    ],
)
def test_the_plurals_the_issue_named_read_as_english(label, plural):
    assert apps.get_model(label)._meta.verbose_name_plural == plural


def test_no_list_shows_a_trace_id_as_plain_text():
    from django.contrib import admin

    plain = [
        type(model_admin).__name__
        for model_admin in admin.site._registry.values()
        if "trace_id" in model_admin.list_display
    ]
    assert plain == []


@pytest.mark.django_db
def test_every_detail_page_shows_its_trace_id_as_a_link(rf):
    from django.contrib import admin

    from tests.factories import UserFactory

    request = rf.get("/admin/")
    request.user = UserFactory(username="root", is_staff=True, is_superuser=True)
    with_trace_ids = [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if any(field.name == "trace_id" for field in model._meta.fields)
    ]
    assert len(with_trace_ids) >= 10
    for model_admin in with_trace_ids:
        fields = model_admin.get_fields(request)
        assert "trace_id_link" in fields and "trace_id" not in fields, type(model_admin).__name__


@pytest.mark.django_db
def test_trace_ids_on_the_audit_list_and_detail_link_to_the_trace_explorer(client, tenant_a):
    from controlplane import tenancy
    from controlplane.models import AuditEvent
    from controlplane.services import audit_record
    from controlplane.trace import bind_trace_id, clear_trace_id
    from tests.factories import UserFactory

    bind_trace_id("audit-link-trace-42")
    try:
        with tenancy.tenant_context(tenant_a.id):
            audit_record(action="bot.kill", resource_type="bot", resource_id=1, actor_name="test")
            event = AuditEvent.objects.get(action="bot.kill")
    finally:
        clear_trace_id()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    link = '<a class="trace-link" href="/admin/observatory/trace/?trace_id=audit-link-trace-42">audit-link-trace-42</a>'
    assert link in client.get("/admin/controlplane/auditevent/").content.decode()
    assert link in client.get(f"/admin/controlplane/auditevent/{event.pk}/change/").content.decode()


@pytest.mark.django_db
def test_a_tick_batch_shows_its_data_problem_in_red_and_an_unknown_market_as_unknown(client, tenant_a):
    from datetime import UTC, datetime

    from execution.models import TickBatch
    from tests.factories import UserFactory

    TickBatch.objects.create(
        instrument_symbol="ES",
        timeframe="1m",
        as_of=datetime(2026, 11, 18, 15, tzinfo=UTC),
        market_open=None,
        data_problem="STALE_DATA",
        trace_id="tick-batch-trace-1",
    )
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    page = " ".join(client.get("/admin/execution/tickbatch/").content.decode().split())
    data_problem = re.search(r'class="field-data_problem .*?</td>', page).group(0)
    market = re.search(r'class="field-market_open .*?</td>', page).group(0)
    assert "bg-red-100" in data_problem and "> STALE_DATA <" in data_problem
    assert "> unknown <" in market and "bg-red-100" not in market and "close_small" not in market


@pytest.mark.django_db
def test_a_user_who_is_not_staff_is_not_drawn_as_an_alarm(client, tenant_a):
    from tests.factories import UserFactory

    UserFactory(username="plain-member")
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    page = " ".join(client.get("/admin/auth/user/").content.decode().split())
    [row] = [row for row in page.split("<tr")[1:] if ">plain-member<" in row]
    assert "close_small" not in row and "bg-red-100" not in row and "> no <" in row
