"""Re-arming after a kill (issue 16): what a positions decision accepts is in the record, a flat reconcile of the
wrong book releases nothing, and the tenant and platform unkills name every LIVE bot not known to be flat."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from bots.models import Bot, Reconciliation, Stage
from controlplane import tenancy
from controlplane.books import Book
from controlplane.models import AuditEvent
from execution.models import StrategyPosition
from tests.assertions import assert_error
from tests.conftest import client_for, present_second_factor
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


def _hold(bot: Bot, quantity: str, book: str = Book.LIVE, symbol: str = "ES") -> None:
    instrument = InstrumentFactory(symbol=symbol)
    with tenancy.tenant_context(bot.tenant_id):
        StrategyPosition.objects.create(
            tenant_id=bot.tenant_id,
            bot=bot,
            instrument=instrument,
            book=book,
            quantity=Decimal(quantity),
            average_price=Decimal("5000"),
        )


def _reconcile(bot: Bot, *, book: str, status: str, is_flat: bool) -> Reconciliation:
    with tenancy.tenant_context(bot.tenant_id):
        return Reconciliation.objects.create(
            tenant_id=bot.tenant_id,
            bot=bot,
            venue=bot.venue,
            book=book,
            status=status,
            is_flat=is_flat,
            requested_by="test",
            trace_id="t",
        )


@pytest.fixture
def api_owner_a(owner_a):
    """The owner's API client presenting a current authenticator code: the writes here need a step-up."""
    return present_second_factor(client_for(owner_a))


def test_unkilling_needs_a_step_up_and_leaves_the_bot_killed_without(owner_a, make_bot, tenant_a):
    bot = make_bot()
    plain = client_for(owner_a)
    plain.post(f"/api/bots/{bot.id}/kill", {"reason": "drill"}, format="json")
    body = {"reason": "ok", "positions_decision": "keep_positions"}
    assert_error(plain.post(f"/api/bots/{bot.id}/unkill", body, format="json"), 403, "STEP_UP_REQUIRED")
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.get(pk=bot.pk).killed is True


def _audit(tenant_id: int | None, action: str) -> AuditEvent:
    if tenant_id is None:
        return AuditEvent.unscoped.filter(action=action, tenant__isnull=True).latest("id")
    with tenancy.tenant_context(tenant_id):
        return AuditEvent.objects.filter(action=action).latest("id")


def test_a_positions_decision_records_the_positions_it_accepts(api_owner_a, make_bot, tenant_a):
    bot = make_bot(venue="tradovate", data_source="databento", stage=Stage.LIVE)
    _hold(bot, "2")
    api_owner_a.post(f"/api/bots/{bot.id}/kill", {"reason": "drill"}, format="json")
    report = _reconcile(bot, book=Book.LIVE, status="MISMATCH", is_flat=False)
    response = api_owner_a.post(
        f"/api/bots/{bot.id}/unkill",
        {"reason": "the long is intended", "positions_decision": "keep_positions"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["killed"] is False
    after = _audit(tenant_a.id, "bot.unkill").after_state
    assert after["positions_decision"] == "keep_positions"
    accepted = after["accepted_positions"]
    assert accepted["book"] == "live" and accepted["positions"] == {"ES": "2"}
    assert accepted["latest_reconciliation"]["id"] == report.id
    assert accepted["latest_reconciliation"]["status"] == "MISMATCH"


def test_a_flat_paper_reconcile_does_not_release_a_live_bot(api_owner_a, make_bot):
    bot = make_bot(venue="tradovate", data_source="databento", stage=Stage.LIVE)
    api_owner_a.post(f"/api/bots/{bot.id}/kill", {"reason": "drill"}, format="json")
    _reconcile(bot, book=Book.PAPER, status="MATCHED", is_flat=True)
    assert_error(
        api_owner_a.post(f"/api/bots/{bot.id}/unkill", {"reason": "paper is flat"}, format="json"),
        409,
        "UNKILL_NEEDS_RECONCILE",
    )
    _reconcile(bot, book=Book.LIVE, status="MATCHED", is_flat=True)
    response = api_owner_a.post(f"/api/bots/{bot.id}/unkill", {"reason": "venue is flat"}, format="json")
    assert response.status_code == 200 and response.json()["killed"] is False


def test_tenant_unkill_lists_live_bots_not_flat_and_leaves_killed_bots_killed(api_owner_a, make_bot, tenant_a):
    holding = make_bot(name="holding", venue="tradovate", data_source="databento", stage=Stage.LIVE)
    _hold(holding, "-1")
    _reconcile(holding, book=Book.LIVE, status="MATCHED", is_flat=False)
    never_reconciled = make_bot(name="never", venue="tradovate", data_source="databento", stage=Stage.LIVE)
    flat = make_bot(name="flat", venue="tradovate", data_source="databento", stage=Stage.LIVE)
    _reconcile(flat, book=Book.LIVE, status="MATCHED", is_flat=True)
    make_bot(name="paper", stage=Stage.PAPER)
    api_owner_a.post(f"/api/bots/{never_reconciled.id}/kill", {"reason": "its own kill"}, format="json")
    api_owner_a.post("/api/tenant/kill", {"reason": "drill"}, format="json")

    body = api_owner_a.post("/api/tenant/unkill", {"reason": "drill over"}, format="json").json()

    assert body["killed"] is False
    listed = {row["name"]: row for row in body["live_bots_not_flat"]}
    assert set(listed) == {"holding", "never"}
    assert listed["holding"]["positions"] == {"ES": "-1"}
    assert "our live book holds positions" in listed["holding"]["why"]
    assert listed["never"]["latest_reconciliation"] is None and listed["never"]["killed"] is True
    assert _audit(tenant_a.id, "tenant.unkill").after_state["live_bots_not_flat"] == body["live_bots_not_flat"]
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.get(pk=never_reconciled.pk).killed is True


def test_system_unkill_lists_every_tenants_live_bots_not_flat(make_bot, tenant_a, tenant_b, owner_b):
    make_bot(name="a-live", venue="tradovate", data_source="databento", stage=Stage.LIVE)
    b_live = make_bot(
        name="b-live", venue="tradovate", data_source="databento", stage=Stage.LIVE, tenant=tenant_b, actor=owner_b
    )
    _hold(b_live, "3")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "correct horse battery staple")
    api_root = present_second_factor(client_for(root))
    api_root.post("/api/system/kill", {"reason": "exchange outage"}, format="json")

    body = api_root.post("/api/system/unkill", {"reason": "over"}, format="json").json()

    assert body["killed"] is False
    listed = {(row["tenant_id"], row["name"]): row for row in body["live_bots_not_flat"]}
    assert set(listed) == {(tenant_a.id, "a-live"), (tenant_b.id, "b-live")}
    assert listed[tenant_b.id, "b-live"]["positions"] == {"ES": "3"}
    assert listed[tenant_a.id, "a-live"]["why"] == "never reconciled with its venue"
    assert _audit(None, "system.unkill").after_state["live_bots_not_flat"] == body["live_bots_not_flat"]
