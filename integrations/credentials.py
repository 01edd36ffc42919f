"""Where a provider's credentials come from, and what may be said about them without revealing them.

Precedence, per credential field: the value an owner entered in admin or through the API for the tenant wins;
otherwise the environment variable of the same name (settings.INTEGRATION_ENV_CREDENTIALS, read at start-up by
``environment_credentials``) satisfies it, for single-tenant deployments. A provider's ``source`` is ``admin``,
``environment``, ``mixed`` (some of each) or ``none``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings

from integrations import crypto
from integrations.models import IntegrationCredential
from integrations.registry import Provider, all_providers


def environment_credentials() -> dict[str, str]:
    """Every registry credential present (not blank) in the environment, and the deployment's own REDIS_URL when
    the environment does not name one: the fallback behind keys entered in admin."""
    names = {f.name for p in all_providers() for f in p.fields}
    found = {name: os.environ[name] for name in names if os.environ.get(name, "").strip()}
    found.setdefault("REDIS_URL", settings.REDIS_URL)
    return found


@dataclass(frozen=True)
class FieldState:
    name: str
    label: str
    required: bool
    secret: bool
    is_set: bool
    source: str | None  # "admin" | "environment" | None
    last4: str
    set_by: str | None
    set_at: str | None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "required": self.required,
            "is_set": self.is_set,
            "source": self.source,
            "last4": self.last4,
            "set_by": self.set_by,
            "set_at": self.set_at,
        }


def hint_of(value: str) -> str:
    """The last four characters, only when that leaves most of the value hidden."""
    return value[-4:] if len(value) >= 12 else ""


def _stored(provider: Provider) -> dict[str, IntegrationCredential]:
    if not provider.tenant_configurable:
        return {}
    return {
        c.name: c for c in IntegrationCredential.objects.filter(provider=provider.provider).select_related("set_by")
    }


def field_states(provider: Provider) -> list[FieldState]:
    stored = _stored(provider)
    env = settings.INTEGRATION_ENV_CREDENTIALS
    states = []
    required_names = set(provider.required_env_vars)
    for f in provider.fields:
        row = stored.get(f.name)
        if row is not None:
            states.append(
                FieldState(
                    f.name,
                    f.label,
                    f.name in required_names,
                    f.secret,
                    True,
                    "admin",
                    row.last4,
                    row.set_by.get_username() if row.set_by else None,
                    row.set_at.isoformat(),
                )
            )
        elif env.get(f.name):
            states.append(
                FieldState(
                    f.name,
                    f.label,
                    f.name in required_names,
                    f.secret,
                    True,
                    "environment",
                    hint_of(env[f.name]),
                    None,
                    None,
                )
            )
        else:
            states.append(FieldState(f.name, f.label, f.name in required_names, f.secret, False, None, "", None, None))
    return states


def missing_env_vars(provider: Provider, states: list[FieldState] | None = None) -> list[str]:
    states = states if states is not None else field_states(provider)
    return [s.name for s in states if s.required and not s.is_set]


def source_of(states: list[FieldState]) -> str:
    sources = {s.source for s in states if s.is_set}
    if not sources:
        return "none"
    return sources.pop() if len(sources) == 1 else "mixed"


def resolve(provider: Provider) -> dict[str, str]:
    """The plaintext credentials a client needs, by field name; only integrations clients call this."""
    stored = _stored(provider)
    env = settings.INTEGRATION_ENV_CREDENTIALS
    values = {}
    for f in provider.fields:
        if f.name in stored:
            values[f.name] = crypto.decrypt(stored[f.name].ciphertext)
        elif env.get(f.name):
            values[f.name] = env[f.name]
    return values
