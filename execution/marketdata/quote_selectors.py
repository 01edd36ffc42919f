"""The one read of quotes a scan may act on: :func:`usable_quotes`.

Fail closed, as the tick is with bars: for every (instrument, venue) the scan expects (the instrument is mapped
at that venue, ``Instrument.venue_symbols``), the answer holds either a usable quote (received within
``ARB_QUOTE_MAX_AGE_MS`` of ``as_of``, and not crossed) or the reason it has none, with the no-trade reason code
of the same name as the tick's (``DATA_STALE``, ``DATA_UNAVAILABLE``) and the numbers that prove it, so a scan that
does not act can record why. ``as_of`` in the past reads what a live scan would have read then (a quote received
after ``as_of`` does not exist for it), so a replay over stored quotes sees what the live scanner saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from execution.marketdata.models import MarketType
from execution.marketdata.selectors import DataProblem
from execution.models import Instrument
from integrations.venue_symbols import CCXT_MARKET_TYPES


@dataclass(frozen=True)
class Quote:
    instrument_id: int
    symbol: str
    venue: str
    market: str
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    venue_ts: datetime | None
    received_at: datetime
    age_ms: int

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class UnusableQuote:
    """Why (instrument, venue) has no usable quote. ``reason`` is a tick reason code; ``received_at`` and
    ``age_ms`` are the latest quote's, None when there is none at all."""

    instrument_id: int
    symbol: str
    venue: str
    reason: DataProblem
    detail: str
    received_at: datetime | None = None
    age_ms: int | None = None

    def as_dict(self) -> dict:
        return {
            "symbol": self.symbol,
            "venue": self.venue,
            "reason": str(self.reason),
            "detail": self.detail,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "age_ms": self.age_ms,
        }


@dataclass
class QuoteView:
    as_of: datetime
    max_age_ms: int
    usable: list[Quote] = field(default_factory=list)
    unusable: list[UnusableQuote] = field(default_factory=list)
    # (symbol, venue) -> the currency the venue's market is priced in (its venue_symbols "quote"), for every
    # expected pair: what a buy there spends (the arbitrage scanners read it).
    quote_assets: dict[tuple[str, str], str] = field(default_factory=dict)

    def by_instrument(self) -> dict[str, list[Quote]]:
        grouped: dict[str, list[Quote]] = {}
        for quote in self.usable:
            grouped.setdefault(quote.symbol, []).append(quote)
        return grouped


# The latest quote of each expected (instrument, venue) at or before as_of: one backwards probe of
# spotquote_latest_idx per pair (LATERAL ... LIMIT 1), never a scan of the retained rows, bounded below by
# retention so a venue gone for days does not walk every partition.
LATEST_SQL = """
SELECT p.instrument_id, p.venue, q.market, q.bid, q.ask, q.bid_size, q.ask_size, q.venue_ts, q.received_at
FROM unnest(%s::bigint[], %s::text[]) AS p (instrument_id, venue)
CROSS JOIN LATERAL (
    SELECT market, bid, ask, bid_size, ask_size, venue_ts, received_at
    FROM execution_spotquote
    WHERE instrument_id = p.instrument_id AND venue = p.venue AND market_type = %s
      AND received_at <= %s AND received_at > %s
    ORDER BY received_at DESC
    LIMIT 1
) q
"""


def usable_quotes(
    *,
    symbols: list[str] | None = None,
    venues: list[str] | None = None,
    market_type: str = MarketType.SPOT,
    as_of: datetime | None = None,
    max_age_ms: int | None = None,
) -> QuoteView:
    """Quotes fresher than ``max_age_ms`` (default ``ARB_QUOTE_MAX_AGE_MS``) at ``as_of`` (default now) for every
    instrument mapped at a venue of ``market_type`` (optionally only ``symbols`` / ``venues``), and for each
    expected pair without one, why."""
    as_of = as_of or timezone.now()
    max_age_ms = settings.ARB_QUOTE_MAX_AGE_MS if max_age_ms is None else max_age_ms
    view = QuoteView(as_of=as_of, max_age_ms=max_age_ms)
    wanted_venues = [v for v, kind in CCXT_MARKET_TYPES.items() if kind == market_type and (not venues or v in venues)]
    instruments = Instrument.objects.exclude(venue_symbols={})
    if symbols is not None:
        instruments = instruments.filter(symbol__in=symbols)
    expected = {}
    for instrument in instruments:
        for venue in wanted_venues:
            if venue in instrument.venue_symbols:
                expected[(instrument.id, venue)] = instrument.symbol
                view.quote_assets[(instrument.symbol, venue)] = instrument.venue_symbols[venue].get("quote", "")
    if not expected:
        return view
    lookback = as_of - timedelta(hours=settings.ARB_QUOTE_RETENTION_HOURS + 24)
    with connection.cursor() as cursor:
        pairs = sorted(expected)
        cursor.execute(LATEST_SQL, [[i for i, _ in pairs], [v for _, v in pairs], str(market_type), as_of, lookback])
        latest = {(row[0], row[1]): row for row in cursor.fetchall()}
    for (instrument_id, venue), symbol in sorted(expected.items(), key=lambda item: (item[1], item[0][1])):
        row = latest.get((instrument_id, venue))
        if row is None:
            view.unusable.append(
                UnusableQuote(
                    instrument_id, symbol, venue, DataProblem.DATA_UNAVAILABLE, f"no {venue} quote for {symbol}"
                )
            )
            continue
        _, _, market, bid, ask, bid_size, ask_size, venue_ts, received_at = row
        age_ms = int((as_of - received_at).total_seconds() * 1000)
        if age_ms > max_age_ms:
            view.unusable.append(
                UnusableQuote(
                    instrument_id,
                    symbol,
                    venue,
                    DataProblem.DATA_STALE,
                    f"latest {venue} quote is {age_ms} ms old (limit {max_age_ms} ms)",
                    received_at,
                    age_ms,
                )
            )
        elif bid >= ask:
            view.unusable.append(
                UnusableQuote(
                    instrument_id,
                    symbol,
                    venue,
                    DataProblem.DATA_UNAVAILABLE,
                    f"{venue} book is crossed (bid {bid} >= ask {ask})",
                    received_at,
                    age_ms,
                )
            )
        else:
            view.usable.append(
                Quote(instrument_id, symbol, venue, market, bid, ask, bid_size, ask_size, venue_ts, received_at, age_ms)
            )
    return view
