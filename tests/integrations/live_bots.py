"""LIVE Tradovate bots for tests that run the OMS against the fake Tradovate
(``integrations/providers/tradovate/fake.py``): the ES instrument, a bot with its keys set, an owner's confirmation
of the key."""

from __future__ import annotations

from bots import services as bot_services
from bots.models import Bot, Stage
from controlplane import tenancy
from execution.models import Instrument
from integrations import services
from integrations.providers.tradovate.fake import CREDS


def es_instrument() -> Instrument:
    return Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]


def live_tradovate_bot(*, tenant, owner, name: str = "live-es") -> Bot:
    """A LIVE bot on Tradovate with its keys set (not yet verified), at autonomy tier T3 (its full limits: the tier
    it would need to have gone LIVE with them)."""
    with tenancy.tenant_context(tenant.id):
        services.credentials_set(provider="tradovate", values=CREDS, actor=owner)
        bot = bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="tradovate",
            data_source="imported",
        )
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.LIVE, autonomy_tier=Bot.AutonomyTier.T3)
        bot.refresh_from_db()
    return bot


def confirm_trade_only(*, tenant, owner, provider: str = "tradovate"):
    """As an owner, confirm that the verified key is trade-only. Tradovate cannot report a key's scopes, so a LIVE
    start (and a LIVE tick) waits for this after the verify of every new key (integrations.permissions)."""
    with tenancy.tenant_context(tenant.id):
        return services.key_permissions_confirm(provider=provider, actor=owner)
