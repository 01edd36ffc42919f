from datetime import UTC, datetime

import pytest
from django.utils import timezone

from bots import services as bot_services
from bots.models import Bot, Runner
from controlplane import tenancy
from execution.models import Instrument, RiskIncident, TradingControl
from oversight.models import SupervisorBreach

# A Wednesday, CME open.
T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_broker_publish(settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False


@pytest.fixture
def es(db):
    return Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]


@pytest.fixture
def make_bot(tenant_a, owner_a, es):
    """A bot on the sim venue at ``stage`` (set directly: these tests are about what happens after)."""

    def make(name="watched", stage="PAPER", risk_limits=None, tier="T0", tenant=None, owner=None):
        tenant = tenant or tenant_a
        with tenancy.tenant_context(tenant.id):
            bot = bot_services.bot_create(
                actor=owner or owner_a,
                name=name,
                strategy="ma_crossover",
                parameters={"fast": 5, "slow": 20},
                instruments=["ES"],
                venue="sim",
                data_source="imported",
                risk_limits=risk_limits or {},
            )
            Bot.objects.filter(pk=bot.pk).update(stage=stage, autonomy_tier=tier)
            bot.refresh_from_db()
        return bot

    return make


def add_runner(bot, *, status="RUNNING", heartbeat_at=None, errors=0) -> Runner:
    now = timezone.now()
    with tenancy.tenant_context(bot.tenant_id):
        return Runner.objects.create(
            bot=bot,
            status=status,
            started_by="test",
            started_at=heartbeat_at or now,
            last_heartbeat_at=heartbeat_at or now,
            consecutive_errors=errors,
            trace_id="t-runner",
        )


def state_of(bot) -> str:
    with tenancy.tenant_context(bot.tenant_id):
        control = TradingControl.objects.filter(bot_id=bot.id).first()
    return control.state if control else "ACTIVE"


def incidents(bot, trigger=None) -> list[RiskIncident]:
    with tenancy.tenant_context(bot.tenant_id):
        qs = RiskIncident.objects.filter(bot=bot, kind="supervisor").order_by("id")
        if trigger:
            qs = qs.filter(details__trigger=trigger)
        return list(qs)


def breaches(bot, trigger=None) -> list[SupervisorBreach]:
    with tenancy.tenant_context(bot.tenant_id):
        qs = SupervisorBreach.objects.filter(bot=bot).order_by("id")
        if trigger:
            qs = qs.filter(trigger=trigger)
        return list(qs)
