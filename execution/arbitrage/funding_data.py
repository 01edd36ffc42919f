"""What a funding scan reads, fail closed: each perpetual's book, mark and funding rate, as of a time.

A perpetual is usable only when all three are fresh at ``as_of`` (within ``ARB_QUOTE_MAX_AGE_MS``, as every quote a
scan acts on): its book (``usable_quotes`` over the swap venues), its latest basis quote (mark, funding rate and
next funding time, as the collector saw them at that poll) and the funding interval of that funding time. Anything
else is a ``MissingQuote`` with the reason code (``DATA_STALE`` with the age, ``DATA_UNAVAILABLE``) so the scan
records why it did not act. The funding rate comes from the basis quote, a point-in-time copy, not from
``FundingRate`` (which the collector updates in place until the funding time passes): so a replay as of a past
time reads the rate the live scan read then.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from bots.strategies.funding import FundingMarket, HeldPosition, PerpMarket
from bots.strategies.quotes import MissingQuote
from execution.funding_models import FundingPosition
from execution.marketdata.models import FundingRate, MarketType
from execution.marketdata.quote_selectors import usable_quotes
from execution.models import Instrument

# The latest basis quote of each (instrument, venue) at or before as_of: one probe of basisquote_latest_idx each.
LATEST_BASIS_SQL = """
SELECT p.instrument_id, p.venue, q.mark, q.funding_rate, q.next_funding_at, q.received_at
FROM unnest(%s::bigint[], %s::text[]) AS p (instrument_id, venue)
CROSS JOIN LATERAL (
    SELECT mark, funding_rate, next_funding_at, received_at
    FROM execution_basisquote
    WHERE instrument_id = p.instrument_id AND venue = p.venue AND received_at <= %s AND received_at > %s
    ORDER BY received_at DESC
    LIMIT 1
) q
"""


def funding_market(*, symbols: list[str] | None, as_of: datetime, max_age_ms: int | None = None) -> FundingMarket:
    """Usable perpetuals of ``symbols`` (all mapped ones when None) at ``as_of``, and why the others are not."""
    max_age_ms = settings.ARB_QUOTE_MAX_AGE_MS if max_age_ms is None else max_age_ms
    books = usable_quotes(symbols=symbols, market_type=MarketType.SWAP, as_of=as_of, max_age_ms=max_age_ms)
    missing = [
        MissingQuote(u.symbol, u.venue, str(u.reason), f"perpetual book: {u.detail}", u.age_ms) for u in books.unusable
    ]
    if not books.usable:
        return FundingMarket((), tuple(missing))
    pairs = sorted({(q.instrument_id, q.venue) for q in books.usable})
    lookback = as_of - timedelta(hours=settings.ARB_QUOTE_RETENTION_HOURS + 24)
    with connection.cursor() as cursor:
        cursor.execute(LATEST_BASIS_SQL, [[i for i, _ in pairs], [v for _, v in pairs], as_of, lookback])
        basis = {(row[0], row[1]): row[2:] for row in cursor.fetchall()}
    intervals = _intervals(pairs, basis)
    perps = []
    for quote in books.usable:
        row = basis.get((quote.instrument_id, quote.venue))
        if row is None:
            missing.append(
                MissingQuote(
                    quote.symbol, quote.venue, "DATA_UNAVAILABLE", f"no {quote.venue} basis quote (mark, funding)"
                )
            )
            continue
        mark, rate, next_funding_at, received_at = row
        age_ms = int((as_of - received_at).total_seconds() * 1000)
        if age_ms > max_age_ms:
            missing.append(
                MissingQuote(
                    quote.symbol,
                    quote.venue,
                    "DATA_STALE",
                    f"latest {quote.venue} funding/basis is {age_ms} ms old (limit {max_age_ms} ms)",
                    age_ms,
                )
            )
            continue
        interval = intervals.get((quote.instrument_id, quote.venue, next_funding_at)) if next_funding_at else None
        if rate is None or next_funding_at is None or not interval:
            missing.append(
                MissingQuote(
                    quote.symbol,
                    quote.venue,
                    "DATA_UNAVAILABLE",
                    f"{quote.venue} gave no funding rate, funding time or interval for {quote.symbol}",
                    age_ms,
                )
            )
            continue
        perps.append(
            PerpMarket(
                symbol=quote.symbol,
                venue=quote.venue,
                bid=quote.bid,
                ask=quote.ask,
                bid_size=quote.bid_size,
                ask_size=quote.ask_size,
                mark=mark,
                funding_rate=rate,
                interval_hours=interval,
                next_funding_at=next_funding_at,
                age_ms=max(age_ms, quote.age_ms),
            )
        )
    return FundingMarket(tuple(perps), tuple(missing))


def _intervals(pairs, basis) -> dict[tuple[int, str, datetime], int]:
    """The funding interval (hours) of each basis quote's next funding time: an interval is a property of the
    venue's contract, so the row of that funding time is read whenever it was last updated."""
    times = {(i, v, row[2]) for (i, v), row in basis.items() if row[2] is not None}
    if not times:
        return {}
    rows = FundingRate.objects.filter(
        instrument_id__in={i for i, _, _ in times},
        venue__in={v for _, v, _ in times},
        funding_at__in={t for _, _, t in times},
        interval_hours__isnull=False,
    ).values_list("instrument_id", "venue", "funding_at", "interval_hours")
    return {(i, v, t): hours for i, v, t, hours in rows if (i, v, t) in times}


def held_positions(bot, book: str, run_ref: int | None = None) -> tuple[HeldPosition, ...]:
    """The bot's active funding positions in ``book`` (of the replay ``run_ref``, or of the live timeline) as the
    scan's plain data."""
    rows = (
        FundingPosition.objects.filter(bot=bot, book=book, run_ref=run_ref, status__in=FundingPosition.ACTIVE_STATUSES)
        .select_related("instrument")
        .order_by("id")
    )
    return tuple(
        HeldPosition(
            p.id, p.instrument.symbol, p.spot_venue, p.perp_venue, p.direction, p.quantity, p.status, p.opened_at
        )
        for p in rows
    )


def instrument_ids(symbols: list[str]) -> dict[str, int]:
    return dict(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", "id"))
