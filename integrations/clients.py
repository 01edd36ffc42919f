"""One client per provider; every outbound call to a provider goes through ``client_for``.

Each client lives in its provider's folder (``integrations/providers/<name>/client.py``) on the one base
``integrations.providers.base.ProviderClient``.
"""

from __future__ import annotations

from integrations import credentials
from integrations.providers.anthropic.client import AnthropicClient
from integrations.providers.base import ProviderClient
from integrations.providers.binanceus.client import BinanceUSClient
from integrations.providers.coinbase.client import CoinbaseClient
from integrations.providers.databento.client import DatabentoClient
from integrations.providers.gemini.client import GeminiClient
from integrations.providers.groq.client import GroqClient
from integrations.providers.hyperliquid.client import HyperliquidClient
from integrations.providers.ironbeam.client import IronbeamClient
from integrations.providers.kraken.client import KrakenClient
from integrations.providers.openai.client import OpenAIClient
from integrations.providers.openrouter.client import OpenRouterClient
from integrations.providers.polygon.client import PolygonClient
from integrations.providers.redis.client import RedisClient
from integrations.providers.tradovate.client import TradovateClient
from integrations.providers.twilio.client import TwilioClient
from integrations.registry import get_provider

CLIENTS: dict[str, type[ProviderClient]] = {
    cls.provider: cls
    for cls in (
        DatabentoClient,
        PolygonClient,
        TradovateClient,
        IronbeamClient,
        CoinbaseClient,
        KrakenClient,
        BinanceUSClient,
        HyperliquidClient,
        OpenAIClient,
        AnthropicClient,
        GeminiClient,
        GroqClient,
        OpenRouterClient,
        RedisClient,
        TwilioClient,
    )
}


def client_for(provider: str, *, bot_id: int | None = None) -> ProviderClient:
    """The provider's client with the current tenant's credentials (admin first, then environment)."""
    spec = get_provider(provider)
    if spec is None or provider not in CLIENTS:
        raise KeyError(provider)
    states = credentials.field_states(spec)
    return CLIENTS[provider](credentials=credentials.resolve(spec), bot_id=bot_id, source=credentials.source_of(states))
