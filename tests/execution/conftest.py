from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bots import services as bot_services
from controlplane import tenancy
from execution.orders.intents import LegSpec
from execution.models import Instrument
from tests.execution.helpers import store_bars

# A Wednesday, CME open: bars at 15:00.. UTC; bar i opens at 100 + i, closes at 100.5 + i, volume 10 + i.
T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_broker_publish(settings):
    """Tests run the OMS themselves; nothing is published to Redis for a worker that is not there."""
    settings.OMS_ENQUEUE_ON_SUBMIT = False


@pytest.fixture
def es(db):
    # get_or_create: committed-database tests empty every table, the seeded instruments included.
    return Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]


@pytest.fixture
def es_bars(es):
    store_bars(es, T0, 10)
    return es


@pytest.fixture
def trading_bot(tenant_a, owner_a):
    def make(name="trader", tenant=None, actor=None, risk_limits=None, stage=None):
        tenant = tenant or tenant_a
        with tenancy.tenant_context(tenant.id):
            bot = bot_services.bot_create(
                actor=actor or owner_a,
                name=name,
                strategy="ma_crossover",
                parameters={"fast": 5, "slow": 20},
                instruments=["ES"],
                venue="sim",
                data_source="imported",
                risk_limits=risk_limits or {},
            )
            if stage:
                type(bot).objects.filter(pk=bot.pk).update(stage=stage)
                bot.refresh_from_db()
        return bot

    return make


def buy(quantity="1", **kwargs) -> LegSpec:
    return LegSpec(venue="sim", symbol="ES", side="buy", quantity=Decimal(quantity), **kwargs)


def sell(quantity="1", **kwargs) -> LegSpec:
    return LegSpec(venue="sim", symbol="ES", side="sell", quantity=Decimal(quantity), **kwargs)
