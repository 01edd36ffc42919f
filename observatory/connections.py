"""The Connections page's data: one card per provider of the registry, grouped by category, each joining the
provider's status row (configured, connected, last verify, proof of use, breaker) with its key fields."""

from __future__ import annotations

from integrations import checklist
from integrations.permissions import key_change_needs_step_up
from integrations.registry import Category, get_provider, providers_in

CATEGORY_TITLES = {
    Category.MARKET_DATA: "Market data",
    Category.BROKER: "Futures brokers",
    Category.CRYPTO_VENUE: "Crypto venues",
    Category.AI: "AI",
    Category.NOTIFICATIONS: "Notifications",
    Category.INFRA: "Infrastructure",
}
# The page's order: what trading needs first.
CATEGORY_ORDER = (
    Category.MARKET_DATA,
    Category.BROKER,
    Category.CRYPTO_VENUE,
    Category.AI,
    Category.NOTIFICATIONS,
    Category.INFRA,
)


def _needed_now() -> dict[str, str]:
    """Provider → the capability that needs it now (one of a group counts for each member)."""
    needed = {}
    for requirement in checklist.enabled_requirements():
        for name in requirement.providers:
            needed.setdefault(name, requirement.capability)
    return needed


def card_for(row: dict, needed: dict[str, str]) -> dict:
    spec = get_provider(row["provider"])
    return {
        **row,
        "label": spec.label,
        "docs_url": spec.docs_url,
        "verify_operation": spec.verify_operation,
        "tenant_configurable": spec.tenant_configurable,
        "needed_for": needed.get(spec.provider),
        "needs_code": key_change_needs_step_up(spec.provider),
    }


def connection_cards() -> list[dict]:
    rows = {row["provider"]: row for row in checklist.provider_status_rows(with_fields=True)}
    needed = _needed_now()
    return [
        {
            "category": category,
            "title": CATEGORY_TITLES[category],
            "cards": [card_for(rows[spec.provider], needed) for spec in providers_in(category)],
        }
        for category in CATEGORY_ORDER
    ]


def connection_card(provider: str) -> dict:
    row = next(r for r in checklist.provider_status_rows(with_fields=True) if r["provider"] == provider)
    return card_for(row, _needed_now())
