import pytest

from bots import services
from controlplane import tenancy


@pytest.fixture
def make_bot(owner_a, tenant_a):
    """A bot of tenant A, created through the service (sim venue, imported bars unless told otherwise)."""

    def make(
        name="bot-1",
        strategy="ma_crossover",
        parameters=None,
        venue="sim",
        data_source="imported",
        stage=None,
        tenant=None,
        actor=None,
    ):
        tenant = tenant or tenant_a
        with tenancy.tenant_context(tenant.id):
            bot = services.bot_create(
                actor=actor or owner_a,
                name=name,
                strategy=strategy,
                parameters=parameters or {"fast": 5, "slow": 20},
                instruments=["ES"],
                venue=venue,
                data_source=data_source,
            )
            if stage:
                type(bot).objects.filter(pk=bot.pk).update(stage=stage)
                bot.refresh_from_db()
        return bot

    return make
