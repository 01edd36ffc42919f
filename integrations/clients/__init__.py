"""One client per provider; every outbound call to a provider goes through ``client_for``."""

from __future__ import annotations

from integrations import credentials
from integrations.clients.base import IntegrationError, ProviderClient, breaker_state
from integrations.clients.ironbeam import IronbeamClient
from integrations.clients.tradovate import TradovateClient
from integrations.clients.http_providers import (
    AnthropicClient,
    GeminiClient,
    GroqClient,
    OpenAIClient,
    OpenRouterClient,
    TwilioClient,
)
from integrations.clients.market_data import DatabentoClient, PolygonClient, ProviderBar
from integrations.clients.infra import RedisClient
from integrations.clients.venues import BinanceUSClient, CoinbaseClient, HyperliquidClient, KrakenClient
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


__all__ = ["CLIENTS", "IntegrationError", "ProviderBar", "ProviderClient", "breaker_state", "client_for"]
