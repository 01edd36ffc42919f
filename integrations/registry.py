"""Every provider the control plane can talk to, defined in code: what it needs and what it unlocks.

Credential names are the provider's own documented names, prefixed with the provider (they double as the
environment variable names that satisfy a requirement, see ``integrations.credentials``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Category:
    MARKET_DATA = "market_data"
    BROKER = "broker"
    CRYPTO_VENUE = "crypto_venue"
    AI = "ai"
    INFRA = "infra"
    NOTIFICATIONS = "notifications"

    ORDER = (MARKET_DATA, BROKER, CRYPTO_VENUE, AI, INFRA, NOTIFICATIONS)


@dataclass(frozen=True)
class CredentialField:
    """One credential of a provider; ``secret=False`` marks a setting (environment, wallet) safe to show whole."""

    name: str
    label: str
    secret: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provider:
    provider: str
    label: str
    category: str
    required: tuple[CredentialField, ...]
    optional: tuple[CredentialField, ...] = ()
    supports_verify: bool = True
    docs_url: str = ""
    unlocks: str = ""
    verify_operation: str = ""
    # False for infrastructure configured by the deployment (Redis), not entered per tenant in admin.
    tenant_configurable: bool = True
    base_urls: dict[str, str] = field(default_factory=dict)

    @property
    def required_env_vars(self) -> list[str]:
        return [f.name for f in self.required]

    @property
    def optional_env_vars(self) -> list[str]:
        return [f.name for f in self.optional]

    @property
    def fields(self) -> tuple[CredentialField, ...]:
        return self.required + self.optional

    def field(self, name: str) -> CredentialField | None:
        return next((f for f in self.fields if f.name == name), None)


def _key(name: str, label: str = "API key") -> CredentialField:
    return CredentialField(name, label)


_ENVIRONMENT_CHOICES = ("demo", "live")

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "databento",
        "Databento",
        Category.MARKET_DATA,
        (_key("DATABENTO_API_KEY"),),
        docs_url="https://databento.com/docs/api-reference-historical/metadata/metadata-list-datasets",
        unlocks="CME futures market data (historical bars and live ticks)",
        verify_operation="GET /v0/metadata.list_datasets",
        base_urls={"default": "https://hist.databento.com"},
    ),
    Provider(
        "polygon",
        "Polygon (Massive)",
        Category.MARKET_DATA,
        (_key("POLYGON_API_KEY"),),
        docs_url="https://massive.com/docs/rest/stocks/tickers/all-tickers",
        unlocks="US equities and options market data",
        verify_operation="GET /v3/reference/tickers?limit=1",
        base_urls={"default": "https://api.polygon.io"},
    ),
    Provider(
        "tradovate",
        "Tradovate",
        Category.BROKER,
        (
            CredentialField("TRADOVATE_USERNAME", "Username (name)", secret=False),
            CredentialField("TRADOVATE_PASSWORD", "Password"),
            CredentialField("TRADOVATE_APP_ID", "App id (appId)", secret=False),
            CredentialField("TRADOVATE_APP_VERSION", "App version (appVersion)", secret=False),
            CredentialField("TRADOVATE_CID", "Client id (cid)", secret=False),
            CredentialField("TRADOVATE_SECRET", "API secret (sec)"),
            CredentialField("TRADOVATE_ENVIRONMENT", "Environment", secret=False, choices=_ENVIRONMENT_CHOICES),
        ),
        (
            CredentialField("TRADOVATE_DEVICE_ID", "Device id (deviceId)", secret=False),
            CredentialField(
                "TRADOVATE_ACCOUNT_ID", "Account id or name to trade (when the user has several)", secret=False
            ),
        ),
        docs_url="https://partner.tradovate.com/api/rest-api-endpoints/authentication/access-token-request",
        unlocks="live and paper futures execution on Tradovate",
        verify_operation="POST /auth/accesstokenrequest, then GET /account/list",
        base_urls={"demo": "https://demo.tradovateapi.com/v1", "live": "https://live.tradovateapi.com/v1"},
    ),
    Provider(
        "ironbeam",
        "Ironbeam",
        Category.BROKER,
        (
            CredentialField("IRONBEAM_USERNAME", "Username", secret=False),
            CredentialField("IRONBEAM_API_KEY", "API key"),
            CredentialField("IRONBEAM_ENVIRONMENT", "Environment", secret=False, choices=_ENVIRONMENT_CHOICES),
        ),
        (
            CredentialField("IRONBEAM_PASSWORD", "Password (when the account authenticates with one)"),
            CredentialField("IRONBEAM_ACCOUNT_ID", "Account id to trade (when the trader has several)", secret=False),
        ),
        docs_url="https://docs.ironbeamapi.com/",
        unlocks="live and paper futures execution on Ironbeam",
        verify_operation="POST /auth, then GET /info/trader",
        base_urls={"demo": "https://demo.ironbeamapi.com/v2", "live": "https://live.ironbeamapi.com/v2"},
    ),
    Provider(
        "coinbase",
        "Coinbase Advanced Trade",
        Category.CRYPTO_VENUE,
        (_key("COINBASE_API_KEY", "API key name"), _key("COINBASE_API_SECRET", "API private key")),
        docs_url="https://docs.cdp.coinbase.com/advanced-trade/docs/welcome",
        unlocks="crypto spot execution on Coinbase (no sandbox)",
        verify_operation="ccxt coinbase.fetch_balance",
    ),
    Provider(
        "kraken",
        "Kraken",
        Category.CRYPTO_VENUE,
        (_key("KRAKEN_API_KEY"), _key("KRAKEN_API_SECRET", "Private key")),
        docs_url="https://docs.kraken.com/api/docs/rest-api/get-account-balance",
        unlocks="crypto spot execution on Kraken (no sandbox)",
        verify_operation="ccxt kraken.fetch_balance",
    ),
    Provider(
        "binanceus",
        "Binance.US",
        Category.CRYPTO_VENUE,
        (_key("BINANCEUS_API_KEY"), _key("BINANCEUS_API_SECRET", "Secret key")),
        docs_url="https://docs.binance.us/#get-user-account-information-user_data",
        unlocks="crypto spot execution on Binance.US",
        verify_operation="ccxt binanceus.fetch_balance",
    ),
    Provider(
        "hyperliquid",
        "Hyperliquid",
        Category.CRYPTO_VENUE,
        (
            CredentialField("HYPERLIQUID_WALLET_ADDRESS", "Wallet address", secret=False),
            CredentialField("HYPERLIQUID_PRIVATE_KEY", "API wallet private key"),
        ),
        (
            CredentialField(
                "HYPERLIQUID_ENVIRONMENT",
                "Network (mainnet unless set to testnet)",
                secret=False,
                choices=("mainnet", "testnet"),
            ),
        ),
        docs_url="https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api",
        unlocks="crypto perpetuals execution on Hyperliquid",
        verify_operation="a signed noop action (POST /exchange)",
    ),
    Provider(
        "openai",
        "OpenAI",
        Category.AI,
        (_key("OPENAI_API_KEY"),),
        docs_url="https://platform.openai.com/docs/api-reference/models/list",
        unlocks="AI strategy review and explanations (OpenAI models)",
        verify_operation="GET /v1/models",
        base_urls={"default": "https://api.openai.com"},
    ),
    Provider(
        "anthropic",
        "Anthropic",
        Category.AI,
        (_key("ANTHROPIC_API_KEY"),),
        docs_url="https://docs.anthropic.com/en/api/models-list",
        unlocks="AI strategy review and explanations (Claude models)",
        verify_operation="GET /v1/models",
        base_urls={"default": "https://api.anthropic.com"},
    ),
    Provider(
        "gemini",
        "Google Gemini",
        Category.AI,
        (_key("GEMINI_API_KEY"),),
        docs_url="https://ai.google.dev/api/models#method:-models.list",
        unlocks="AI strategy review and explanations (Gemini models)",
        verify_operation="GET /v1beta/models",
        base_urls={"default": "https://generativelanguage.googleapis.com"},
    ),
    Provider(
        "groq",
        "Groq",
        Category.AI,
        (_key("GROQ_API_KEY"),),
        docs_url="https://console.groq.com/docs/api-reference#models-list",
        unlocks="fast AI inference (Groq-hosted models)",
        verify_operation="GET /openai/v1/models",
        base_urls={"default": "https://api.groq.com"},
    ),
    Provider(
        "openrouter",
        "OpenRouter",
        Category.AI,
        (_key("OPENROUTER_API_KEY"),),
        docs_url="https://openrouter.ai/docs/api-reference/api-keys/get-current-key",
        unlocks="AI models from many vendors through one key",
        verify_operation="GET /api/v1/key",
        base_urls={"default": "https://openrouter.ai"},
    ),
    Provider(
        "redis",
        "Redis",
        Category.INFRA,
        (CredentialField("REDIS_URL", "Redis URL"),),
        (CredentialField("QUEUE_REDIS_URL", "Separate Redis URL for the task queue"),),
        docs_url="https://redis.io/docs/latest/commands/ping/",
        unlocks="Celery broker, cache and rate limits (every background job)",
        verify_operation="PING",
        tenant_configurable=False,
    ),
    Provider(
        "twilio",
        "Twilio",
        Category.NOTIFICATIONS,
        (CredentialField("TWILIO_ACCOUNT_SID", "Account SID", secret=False), _key("TWILIO_AUTH_TOKEN", "Auth token")),
        (CredentialField("TWILIO_FROM_NUMBER", "Sending phone number (E.164)", secret=False),),
        docs_url="https://www.twilio.com/docs/usage/api/account#fetch-an-account-resource",
        unlocks="SMS alerts and 2FA codes",
        verify_operation="GET /2010-04-01/Accounts/{AccountSid}.json",
        base_urls={"default": "https://api.twilio.com"},
    ),
)

_BY_NAME = {p.provider: p for p in PROVIDERS}


def all_providers() -> tuple[Provider, ...]:
    return PROVIDERS


def get_provider(name: str) -> Provider | None:
    return _BY_NAME.get(name)


def provider_names() -> list[str]:
    return [p.provider for p in PROVIDERS]


def providers_in(category: str) -> list[Provider]:
    return [p for p in PROVIDERS if p.category == category]
