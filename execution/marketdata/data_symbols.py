"""Which symbol an instrument has at each market-data provider (``Instrument.data_symbols``).

Our symbols are ours (``ES`` is the continuous front contract, ``BTC-USD`` crypto spot); each provider names the
same thing its own way, and a wrong guess would ingest another market's prices under our name. So a mapping is
explicit, per provider, and an instrument without one for a bot's data source gets no bars from it (the refresh
and system status say which mapping to add).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

# Databento's input symbology types that name one series (https://databento.com/docs/standards-and-conventions/symbology).
DATABENTO_STYPES = ("raw_symbol", "continuous", "instrument_id")
EXAMPLE = (
    '{"databento": {"dataset": "GLBX.MDP3", "symbol": "ES.c.0", "stype_in": "continuous"}, '
    '"polygon": {"ticker": "X:BTCUSD"}}'
)
_FIELDS = {"databento": {"dataset": True, "symbol": True, "stype_in": False}, "polygon": {"ticker": True}}


def validate_data_symbols(value) -> None:
    """Only known providers, each with its required non-blank text fields and nothing else."""
    if not isinstance(value, dict):
        raise ValidationError(f"data_symbols must be an object by provider, e.g. {EXAMPLE}.")
    problems = []
    for provider, mapping in value.items():
        fields = _FIELDS.get(provider)
        if fields is None:
            problems.append(f"unknown provider {provider!r}; one of {', '.join(_FIELDS)}")
            continue
        if not isinstance(mapping, dict):
            problems.append(f"{provider}: must be an object with {', '.join(fields)}")
            continue
        for name in mapping.keys() - fields.keys():
            problems.append(f"{provider}: unknown field {name!r}; fields are {', '.join(fields)}")
        for name, required in fields.items():
            text = mapping.get(name)
            if text is None and not required:
                continue
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{provider}.{name} must be a non-blank string")
        stype = mapping.get("stype_in")
        if provider == "databento" and stype is not None and stype not in DATABENTO_STYPES:
            problems.append(f"databento.stype_in must be one of {', '.join(DATABENTO_STYPES)}")
    if problems:
        raise ValidationError(problems)


def unmapped_message(symbol: str, provider: str) -> tuple[str, str]:
    """The problem and its fix when ``symbol`` has no mapping for ``provider``."""
    return (
        f"{symbol} has no {provider} symbol, so no {provider} bars can be fetched for it.",
        f"Set data_symbols[{provider!r}] on instrument {symbol} in admin (Execution > Instruments), "
        f"e.g. {EXAMPLE}, or run the bot on another data source.",
    )
