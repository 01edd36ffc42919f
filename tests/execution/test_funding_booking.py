"""Funding payments booked per funding time while a funding position is open (idempotent per position and time),
the ``basis_pnl`` view over positions and payments (tenant-isolated through the tables' row-level security), its
API (``GET /api/bots/{id}/basis-pnl``) and the bot page's basis PnL panel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from bots import services as bot_services
from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.funding_models import BasisPnl, FundingDirection, FundingPayment, FundingPosition
from execution.arbitrage.funding_services import book_funding_payments
from execution.arbitrage.funding_tasks import book_funding_for_tenant
from execution.marketdata.models import BasisQuote, FundingRate
from execution.marketdata.quote_store import quote_partitions_maintain
from execution.models import Instrument, TradeIntent
from tests.conftest import client_for, console_client

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def btc(db):
    quote_partitions_maintain(now=T0, ahead_days=1)  # basis quotes are partitioned by day
    return Instrument.objects.get(symbol="BTC-USD")


def funding_time(btc, at: datetime, rate: str, *, mark: str | None = "50000", mark_before=timedelta(seconds=2)):
    """The venue's rate for funding time ``at`` and (unless ``mark`` is None) a basis quote just before it."""
    FundingRate.objects.create(
        venue="hyperliquid",
        instrument=btc,
        market="BTC/USDC:USDC",
        rate=Decimal(rate),
        interval_hours=1,
        funding_at=at,
        received_at=at - mark_before,
    )
    if mark is not None:
        BasisQuote.objects.create(
            venue="hyperliquid",
            instrument=btc,
            market="BTC/USDC:USDC",
            mark=Decimal(mark),
            index=Decimal(mark),
            spot=Decimal(mark),
            basis=0,
            basis_bps=0,
            funding_rate=Decimal(rate),
            next_funding_at=at,
            received_at=at - mark_before,
        )


def make_bot(tenant, owner, name="funder"):
    with tenancy.tenant_context(tenant.id):
        return bot_services.bot_create(
            actor=owner, name=name, strategy="funding_arbitrage", parameters={}, instruments=["BTC-USD"]
        )


def make_position(
    bot,
    btc,
    *,
    direction=FundingDirection.LONG_SPOT_SHORT_PERP,
    status="OPEN",
    quantity="0.5",
    opened_at=T0 + timedelta(minutes=30),
    closed_at=None,
    key="open-1",
    **prices,
):
    """A position as the scanner leaves it once its entry filled (the intents' fills are tested end to end in
    test_funding_scanner); here only its numbers matter."""
    with tenancy.tenant_context(bot.tenant_id):
        intent = TradeIntent.objects.create(
            bot=bot,
            idempotency_key=key,
            request_hash="x" * 64,
            source="tick",
            created_by="test",
            trace_id="t",
            status=TradeIntent.Status.FILLED,
        )
        return FundingPosition.objects.create(
            bot=bot,
            book="paper",
            instrument=btc,
            spot_venue="coinbase",
            perp_venue="hyperliquid",
            direction=direction,
            quantity=Decimal(quantity),
            status=status,
            open_intent=intent,
            opened_at=opened_at,
            closed_at=closed_at,
            **{
                "entry_spot_price": Decimal("50000"),
                "entry_perp_price": Decimal("50060"),
                "entry_fees": Decimal("30"),
                **prices,
            },
        )


def test_each_funding_time_while_open_is_booked_once_at_the_rate_times_the_notional_at_the_mark(btc, tenant_a, owner_a):
    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0, "0.0002")  # before the position opened: not its funding
    funding_time(btc, T0 + HOUR, "0.0001", mark="50000")
    funding_time(btc, T0 + 2 * HOUR, "-0.00005", mark="51000")
    funding_time(btc, T0 + 3 * HOUR, "0.0003")  # not yet paid at as_of
    position = make_position(bot, btc)

    with tenancy.tenant_context(tenant_a.id):
        first = book_funding_payments(as_of=T0 + 2 * HOUR + timedelta(minutes=5))
        again = book_funding_payments(as_of=T0 + 2 * HOUR + timedelta(minutes=5))
        payments = list(FundingPayment.objects.filter(position=position).order_by("funding_at"))
        audits = AuditEvent.objects.filter(action="funding_position.payments", resource_id=str(position.pk)).count()

    assert (first.booked, again.booked, first.unpriced) == (2, 0, [])
    # Short perpetual: a positive rate is received, a negative one paid. 0.0001 x 0.5 x 50000 = 2.5.
    assert [(p.funding_at, p.rate, p.mark, p.amount) for p in payments] == [
        (T0 + HOUR, Decimal("0.0001"), Decimal("50000"), Decimal("2.5")),
        (T0 + 2 * HOUR, Decimal("-0.00005"), Decimal("51000"), Decimal("-1.275")),
    ]
    assert audits == 1  # booked once, audited once


def test_a_long_perpetual_pays_positive_funding_and_nothing_is_booked_after_the_close(btc, tenant_a, owner_a):
    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0 + HOUR, "0.0001", mark="50000")
    funding_time(btc, T0 + 2 * HOUR, "0.0001", mark="50000")
    position = make_position(
        bot,
        btc,
        direction=FundingDirection.SHORT_SPOT_LONG_PERP,
        status="CLOSED",
        closed_at=T0 + HOUR + timedelta(minutes=10),
        exit_spot_price=Decimal("50100"),
        exit_perp_price=Decimal("50100"),
        exit_fees=Decimal("30"),
    )
    with tenancy.tenant_context(tenant_a.id):
        result = book_funding_payments(as_of=T0 + 3 * HOUR)
        amounts = list(FundingPayment.objects.filter(position=position).values_list("amount", flat=True))
    assert result.booked == 1 and amounts == [Decimal("-2.5")]


def test_a_funding_time_without_a_recent_mark_is_reported_and_not_booked_at_a_guessed_price(
    btc, tenant_a, owner_a, settings
):
    settings.ARB_FUNDING_MARK_MAX_AGE_SECONDS = 60
    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0 + HOUR, "0.0001", mark_before=timedelta(minutes=5))  # the collector was down
    position = make_position(bot, btc)
    with tenancy.tenant_context(tenant_a.id):
        result = book_funding_payments(as_of=T0 + 2 * HOUR)
        assert FundingPayment.objects.count() == 0
    assert result.booked == 0
    assert result.unpriced == [{"position": position.pk, "funding_at": (T0 + HOUR).isoformat()}]


def test_the_beat_task_books_for_its_tenant_and_a_second_run_books_nothing(btc, tenant_a, owner_a):
    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0 + HOUR, "0.0001")
    make_position(bot, btc)
    assert book_funding_for_tenant(tenant_id=tenant_a.id)["booked"] == 1
    assert book_funding_for_tenant(tenant_id=tenant_a.id)["booked"] == 0
    with tenancy.tenant_context(tenant_a.id):
        assert FundingPayment.objects.count() == 1


def test_basis_pnl_has_entry_basis_funding_exit_basis_fees_and_total_and_unknowns_stay_null(
    btc, tenant_a, owner_a, tenant_b, owner_b
):
    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0 + HOUR, "0.0001", mark="50000")
    funding_time(btc, T0 + 2 * HOUR, "0.0001", mark="50000")
    closed = make_position(
        bot,
        btc,
        status="CLOSED",
        closed_at=T0 + 3 * HOUR,
        key="open-closed",
        exit_spot_price=Decimal("50200"),
        exit_perp_price=Decimal("50220"),
        exit_fees=Decimal("31"),
    )
    with tenancy.tenant_context(tenant_a.id):
        book_funding_payments(as_of=T0 + 4 * HOUR)
        still_open = make_position(bot, btc, key="open-2", opened_at=T0 + 3 * HOUR + timedelta(minutes=30))
        rows = {row.pk: row for row in BasisPnl.objects.filter(bot_id=bot.pk)}

    row = rows[closed.pk]
    # Entry basis 60, exit basis 20: a short perpetual against long spot gains 40 x 0.5 = 20; funding 2 x 2.5.
    assert (row.entry_basis, row.exit_basis, row.basis_pnl) == (Decimal("60"), Decimal("20"), Decimal("20"))
    assert (row.funding_received, row.funding_payments, row.fees) == (Decimal("5"), 2, Decimal("61"))
    assert row.total == Decimal("20") + Decimal("5") - Decimal("61")
    open_row = rows[still_open.pk]
    assert (open_row.exit_basis, open_row.basis_pnl, open_row.total) == (None, None, None)
    assert (open_row.funding_received, open_row.funding_payments, open_row.fees) == (Decimal("0"), 0, Decimal("30"))
    # The view reads its tables as the caller: tenant B sees none of A's rows, even unscoped.
    with tenancy.tenant_context(tenant_b.id), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM basis_pnl")
        assert cursor.fetchone()[0] == 0


def test_the_api_lists_a_bots_basis_pnl_with_payments_and_names_a_bad_filter(btc, tenant_a, owner_a, owner_b):
    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0 + HOUR, "0.0001", mark="50000")
    position = make_position(bot, btc)
    with tenancy.tenant_context(tenant_a.id):
        book_funding_payments(as_of=T0 + 2 * HOUR)
    client = client_for(owner_a)

    body = client.get(f"/api/bots/{bot.pk}/basis-pnl").json()

    assert body["count"] == 1 and "as_of" in body and "degraded" in body
    (row,) = body["results"]
    assert (row["position_id"], row["status"], row["entry_basis"], row["exit_basis"], row["total"]) == (
        position.pk,
        "OPEN",
        "60.000000000",
        None,
        None,
    )
    assert row["funding_received"] == "2.500000000"
    assert [(p["funding_at"][:19], p["amount"]) for p in row["payments"]] == [("2026-12-01T01:00:00", "2.500000000")]
    bad = client.get(f"/api/bots/{bot.pk}/basis-pnl?book=demo")
    assert bad.status_code == 400 and "book" in bad.json()["details"]
    assert client_for(owner_b).get(f"/api/bots/{bot.pk}/basis-pnl").status_code == 404


def test_the_bot_page_shows_the_basis_pnl_panel_with_open_numbers_as_open(btc, tenant_a, owner_a):
    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0 + HOUR, "0.0001", mark="50000")
    position = make_position(bot, btc)
    with tenancy.tenant_context(tenant_a.id):
        book_funding_payments(as_of=T0 + 2 * HOUR)

    page = console_client(owner_a).get(f"/admin/bots/bot/{bot.id}/change/").content.decode()

    assert 'id="basis-pnl"' in page and f'data-position="{position.pk}"' in page
    row = page.split(f'data-position="{position.pk}"')[1].split("</tr>")[0]
    assert '<td class="cp-mono funding-received">2.500000</td>' in row
    assert 'class="cp-mono basis-total"><span class="cp-muted">open</span>' in row


def test_the_admin_lists_funding_positions_with_their_payments(btc, tenant_a, owner_a):
    from django.contrib.auth.models import Permission
    from django.test import Client

    from controlplane.models import Membership
    from tests.factories import UserFactory

    bot = make_bot(tenant_a, owner_a)
    funding_time(btc, T0 + HOUR, "0.0001", mark="50000")
    position = make_position(bot, btc)
    with tenancy.tenant_context(tenant_a.id):
        book_funding_payments(as_of=T0 + 2 * HOUR)
    user = UserFactory(username="staff-funding", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_fundingposition", "view_fundingpayment"]))
    with tenancy.tenant_context(tenant_a.id):
        Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    listing = client.get("/admin/execution/fundingposition/")
    assert listing.status_code == 200 and "long_spot_short_perp" in listing.content.decode()
    detail = client.get(f"/admin/execution/fundingposition/{position.pk}/change/")
    assert detail.status_code == 200 and "2.500000000" in detail.content.decode()
