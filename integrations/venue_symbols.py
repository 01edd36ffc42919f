"""Which market an instrument is at each crypto venue (``Instrument.venue_symbols``), and the assets it moves.

Our crypto symbols are ours (``BTC-USD``: BASE-QUOTE); ccxt names each venue's markets in its own unified form
(``BTC/USD`` spot on Kraken, Coinbase and Binance.US; ``BTC/USDC:USDC`` for Hyperliquid's BTC perpetual, settled
in USDC). Sending our name would be refused by ccxt at best and trade another market at worst, so the mapping
is explicit per venue and read from the venue's own market list (``load_markets()``): ``map_venue_symbols``
stores it, with the base and quote asset that spot reconcile compares balances by. An instrument without a
mapping for a venue is refused before anything is sent (``INSTRUMENT_NOT_MAPPED``), never guessed.

Resolution is exact: a spot venue's market whose base and quote are the instrument's own; a perpetual venue
quotes in its settlement coin (USDC), which is not our quote, so its market is named by the operator
(``--symbol``) and only checked against the venue's list (it must exist, be a swap and have our base).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError

from controlplane.errors import ControlPlaneError, ErrorCode

# The ccxt venues and the kind of market each one trades for us.
CCXT_MARKET_TYPES = {"coinbase": "spot", "kraken": "spot", "binanceus": "spot", "hyperliquid": "swap"}
FIELDS = ("symbol", "base", "quote", "type")
EXAMPLE = (
    '{"kraken": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"}, '
    '"hyperliquid": {"symbol": "BTC/USDC:USDC", "base": "BTC", "quote": "USDC", "type": "swap"}}'
)


@dataclass(frozen=True)
class VenueSymbol:
    symbol: str  # ccxt's unified symbol at the venue
    base: str
    quote: str
    type: str  # "spot" | "swap"

    def as_json(self) -> dict:
        return asdict(self)


def validate_venue_symbols(value) -> None:
    """Only ccxt venues, each with a non-blank symbol, base and quote and the venue's own market type."""
    if not isinstance(value, dict):
        raise ValidationError(f"venue_symbols must be an object by venue, e.g. {EXAMPLE}.")
    problems = []
    for venue, mapping in value.items():
        kind = CCXT_MARKET_TYPES.get(venue)
        if kind is None:
            problems.append(f"unknown venue {venue!r}; one of {', '.join(CCXT_MARKET_TYPES)}")
            continue
        if not isinstance(mapping, dict):
            problems.append(f"{venue}: must be an object with {', '.join(FIELDS)}")
            continue
        for name in mapping.keys() - set(FIELDS):
            problems.append(f"{venue}: unknown field {name!r}; fields are {', '.join(FIELDS)}")
        for name in FIELDS:
            text = mapping.get(name)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{venue}.{name} must be a non-blank string")
        if mapping.get("type") not in (None, kind):
            problems.append(f"{venue}.type must be {kind!r} ({venue} trades {kind} markets for us)")
    if problems:
        raise ValidationError(problems)


def fix_command(symbol: str, venue: str, *, market: str | None = None) -> str:
    if market is None and CCXT_MARKET_TYPES.get(venue) == "swap":
        market = "<the venue's perpetual, e.g. BTC/USDC:USDC>"
    extra = f" --symbol {market}" if market else ""
    return f"python manage.py map_venue_symbols --tenant <slug> --venue {venue} --instrument {symbol}{extra}"


def not_mapped(symbol: str, venue: str) -> ControlPlaneError:
    """The refusal of an order or a reconcile of ``symbol`` at ``venue`` while it has no mapping."""
    return ControlPlaneError(
        ErrorCode.INSTRUMENT_NOT_MAPPED,
        f"{symbol} has no {venue} market mapped (Instrument.venue_symbols[{venue!r}]): nothing is sent to or "
        f"reconciled with {venue} for it.",
        suggested_fix=f"Map it from {venue}'s own market list: {fix_command(symbol, venue)}.",
        details={"instrument": symbol, "venue": venue},
    )


def venue_symbol_of(symbol: str, venue: str, mapping: dict | None) -> VenueSymbol:
    """``mapping`` (the venue's entry of an instrument's ``venue_symbols``) as a VenueSymbol; refused when there is
    none (never our name sent)."""
    if not mapping:
        raise not_mapped(symbol, venue)
    return VenueSymbol(**{name: mapping[name] for name in FIELDS})


def mapped_symbol(instrument, venue: str) -> VenueSymbol:
    """The stored mapping of ``instrument`` (an ``Instrument``: ``symbol`` and ``venue_symbols``) at ``venue``."""
    return venue_symbol_of(instrument.symbol, venue, (instrument.venue_symbols or {}).get(venue))


def our_assets(symbol: str) -> tuple[str, str]:
    """(base, quote) of our ``BASE-QUOTE`` crypto symbol."""
    base, sep, quote = symbol.partition("-")
    if not sep or not base or not quote or "-" in quote:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            f"{symbol} is not a BASE-QUOTE crypto symbol; its venue market cannot be resolved.",
            details={"instrument": symbol},
        )
    return base.upper(), quote.upper()


def resolve_from_markets(*, symbol: str, venue: str, markets: dict, explicit: str | None = None) -> VenueSymbol:
    """The venue market of our ``symbol``, read from ccxt's ``load_markets()`` answer of that venue."""
    kind = CCXT_MARKET_TYPES[venue]
    base, quote = our_assets(symbol)
    if explicit:
        market = markets.get(explicit)
        if not isinstance(market, dict):
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR,
                f"{venue} lists no market {explicit!r}.",
                details={"instrument": symbol, "venue": venue, "symbol": explicit},
            )
        problems = [f"its type is {market.get('type')!r}, not {kind!r}"] if market.get("type") != kind else []
        if str(market.get("base")).upper() != base:
            problems.append(f"its base is {market.get('base')!r}, not {base!r}")
        if problems:
            raise ControlPlaneError(
                ErrorCode.VALIDATION_ERROR,
                f"{venue}'s {explicit} is not {symbol}: {'; '.join(problems)}.",
                details={"instrument": symbol, "venue": venue, "symbol": explicit},
            )
        return _from_market(market)
    found = [
        m
        for m in markets.values()
        if isinstance(m, dict)
        and m.get("type") == kind
        and str(m.get("base")).upper() == base
        and str(m.get("quote")).upper() == quote
        and m.get("active") is not False
    ]
    if len(found) != 1:
        candidates = sorted(
            m["symbol"]
            for m in markets.values()
            if isinstance(m, dict) and m.get("type") == kind and str(m.get("base")).upper() == base
        )
        what = "several" if found else "no"
        one_of = "<one of " + ", ".join(candidates) + ">"
        raise ControlPlaneError(
            ErrorCode.INSTRUMENT_NOT_MAPPED,
            f"{venue} lists {what} active {kind} market with base {base} and quote {quote} for {symbol}.",
            suggested_fix=(
                f"Name the market: {fix_command(symbol, venue, market=one_of)}."
                if candidates
                else f"{venue} does not trade {base}; run the bot on another venue."
            ),
            details={"instrument": symbol, "venue": venue, "candidates": candidates},
        )
    return _from_market(found[0])


def _from_market(market: dict) -> VenueSymbol:
    return VenueSymbol(
        symbol=market["symbol"], base=str(market["base"]), quote=str(market["quote"]), type=market["type"]
    )
