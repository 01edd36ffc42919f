"""The quote collector (``manage.py collect_quotes``): the crypto venues' top of book, funding and basis, kept
fresh for the arbitrage scanners and written in bulk.

What it collects: every instrument mapped at a ccxt venue (``Instrument.venue_symbols``), at the venues some active
tenant has configured (all the venue's required keys set, admin or environment). Quotes are global facts, but
every call to a venue goes through that venue's one client, which is a tenant's (its keys, its breaker, its
proof-of-use events): the collector uses the lowest-id such tenant's client, so a venue no tenant uses is never
called. A tenant that uses a crypto venue is also the tenant whose status depends on the collector
(oversight.status): ``collector_users`` is that one rule.

How: REST polling through ccxt every ``ARB_QUOTE_POLL_SECONDS``. ccxt's websocket streams (ccxt.pro) were left
out: they would need an asyncio loop beside our synchronous clients and a second path around the client's
breaker and usage events; a poll of all of a venue's markets is asked concurrently and recorded as one
operation, so a round costs about one round trip per venue. The venues of a round are asked one after another
(each client records its usage event in the collector's own transaction); a failing venue is logged, its usage
event says why, and the others are written: its quotes simply age until ``usable_quotes`` calls them stale.

Each round is one transaction of multi-row inserts (spot quotes, basis quotes, an upsert of funding rates) and
ends with the collector's heartbeat (``ProcessHeartbeat`` kind ``quote_collector``), whose ``queues`` lists the
venues that answered that round.
"""

from __future__ import annotations

from collections.abc import Iterable

import logging
import socket
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane import tenancy
from controlplane.heartbeats import record_heartbeat
from controlplane.models import ProcessHeartbeat
from controlplane.selectors import active_tenant_ids
from execution.marketdata.models import BasisQuote, FundingRate, MarketType, SpotQuote
from execution.models import Instrument
from integrations import credentials
from integrations.clients import client_for
from integrations.providers.base import IntegrationError
from integrations.providers.ccxt_client import CcxtVenueClient
from integrations.registry import get_provider
from integrations.venue_symbols import CCXT_MARKET_TYPES

logger = logging.getLogger(__name__)

HEARTBEAT_KIND = ProcessHeartbeat.Kind.QUOTE_COLLECTOR


@dataclass(frozen=True)
class Market:
    instrument_id: int
    symbol: str  # ours, BTC-USD
    market: str  # the venue's, BTC/USD or BTC/USDC:USDC
    market_type: str


@dataclass
class VenuePlan:
    venue: str
    tenant_id: int
    markets: list[Market]


@dataclass
class VenueOutcome:
    venue: str
    status: str  # ok | failed
    quotes: int = 0
    funding: int = 0
    basis: int = 0
    error_code: str = ""
    failed_markets: dict[str, str] = field(default_factory=dict)


def configured_crypto_venues() -> list[str]:
    """The ccxt venues the current tenant has configured (every required key set). Call inside its context."""
    with transaction.atomic():  # credentials are tenant-owned: read under RLS
        return [v for v in CCXT_MARKET_TYPES if not credentials.missing_env_vars(get_provider(v))]


def quote_collector_heartbeat(*, configured_providers: Iterable[str]) -> dict | None:
    """For the current tenant, given its fully configured providers (system status has read them already): None
    when none is a crypto venue (the collector is not its concern), else the freshest collector heartbeat, the
    venues its last round got answers from, and whether it is older than ``ARB_COLLECTOR_STALE_SECONDS`` (never
    seen counts as stale)."""
    configured = set(configured_providers)
    venues = [v for v in CCXT_MARKET_TYPES if v in configured]
    if not venues:
        return None
    beat = ProcessHeartbeat.objects.filter(kind=HEARTBEAT_KIND).order_by("-last_seen_at").first()
    stale_after = settings.ARB_COLLECTOR_STALE_SECONDS
    last_seen = beat.last_seen_at if beat else None
    return {
        "hostname": beat.hostname if beat else None,
        "last_seen_at": last_seen,
        "venues_answering": beat.queues if beat else [],
        "configured_venues": venues,
        "stale": last_seen is None or last_seen < timezone.now() - timedelta(seconds=stale_after),
        "stale_after_seconds": stale_after,
    }


def collector_users() -> dict[str, int]:
    """Venue -> the lowest-id active tenant that has it configured: the venues worth collecting, and whose client
    asks them."""
    users: dict[str, int] = {}
    for tenant_id in active_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            for venue in configured_crypto_venues():
                users.setdefault(venue, tenant_id)
        if len(users) == len(CCXT_MARKET_TYPES):
            break
    return users


def collector_plan() -> list[VenuePlan]:
    users = collector_users()
    markets: dict[str, list[Market]] = {venue: [] for venue in users}
    for instrument in Instrument.objects.exclude(venue_symbols={}).order_by("symbol"):
        for venue, mapping in instrument.venue_symbols.items():
            if venue in markets:
                markets[venue].append(Market(instrument.id, instrument.symbol, mapping["symbol"], mapping["type"]))
    return [VenuePlan(venue, users[venue], markets[venue]) for venue in CCXT_MARKET_TYPES if markets.get(venue)]


def _decimal(value) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def _ms_to_datetime(value) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=UTC) if isinstance(value, (int, float)) and value > 0 else None


def quote_from_book(market: Market, venue: str, book: dict, received_at: datetime) -> SpotQuote | None:
    """The top of ccxt's order book as a row; None for an empty side or a level that is not a positive number."""
    bids, asks = book.get("bids") or [], book.get("asks") or []
    if not bids or not asks:
        return None
    bid, bid_size = (_decimal(x) for x in bids[0][:2])
    ask, ask_size = (_decimal(x) for x in asks[0][:2])
    if not all(x is not None and x > 0 for x in (bid, ask)) or bid_size is None or ask_size is None:
        return None
    return SpotQuote(
        venue=venue,
        instrument_id=market.instrument_id,
        market=market.market,
        market_type=market.market_type,
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        venue_ts=_ms_to_datetime(book.get("timestamp")),
        received_at=received_at,
    )


class QuoteCollector:
    """One per collector process: the venues' clients (kept across rounds, so each loads its markets once) and
    the plan, refreshed every ``plan_every`` rounds (newly configured venues and newly mapped instruments)."""

    def __init__(self, *, hostname: str | None = None, plan_every: int = 15) -> None:
        self.hostname = hostname or socket.gethostname()
        self.started_at = timezone.now()
        self.plan_every = plan_every
        self.rounds = 0
        self.plan: list[VenuePlan] = []
        self.clients: dict[str, tuple[int, CcxtVenueClient]] = {}

    def client(self, plan: VenuePlan) -> CcxtVenueClient:
        held = self.clients.get(plan.venue)
        if held is None or held[0] != plan.tenant_id:
            with tenancy.tenant_context(plan.tenant_id), transaction.atomic():
                held = (plan.tenant_id, client_for(plan.venue))
            self.clients[plan.venue] = held
        return held[1]

    def round(self) -> list[VenueOutcome]:
        """Ask every planned venue once, write what came back in one transaction, beat."""
        if self.rounds % self.plan_every == 0:
            self.plan = collector_plan()
        self.rounds += 1
        outcomes: list[VenueOutcome] = []
        quotes: list[SpotQuote] = []
        funding: dict[str, dict] = {}  # venue -> ccxt funding rates by market
        for plan in self.plan:
            outcome = VenueOutcome(plan.venue, "ok")
            outcomes.append(outcome)
            try:
                with tenancy.tenant_context(plan.tenant_id):
                    client = self.client(plan)
                    books, failed = client.order_books(
                        [m.market for m in plan.markets], depth=settings.ARB_QUOTE_BOOK_DEPTH
                    )
                    received_at = timezone.now()
                    swaps = [m.market for m in plan.markets if m.market_type == MarketType.SWAP]
                    funding[plan.venue] = client.funding_rates(swaps) if swaps else {}
            except IntegrationError as exc:
                outcome.status, outcome.error_code = "failed", str(exc.code)
                logger.warning(
                    "quote collection failed at a venue",
                    extra={"venue": plan.venue, "error_code": str(exc.code), "tenant_id": plan.tenant_id},
                )
                continue
            outcome.failed_markets = {market: str(code) for market, code in failed.items()}
            for market in plan.markets:
                book = books.get(market.market)
                row = quote_from_book(market, plan.venue, book, received_at) if book else None
                if row is None:
                    outcome.failed_markets.setdefault(market.market, "EMPTY_BOOK")
                    continue
                quotes.append(row)
                outcome.quotes += 1
        rates, bases = self._funding_and_basis(funding, quotes, outcomes)
        with transaction.atomic():
            SpotQuote.objects.bulk_create(quotes)
            BasisQuote.objects.bulk_create(bases)
            FundingRate.objects.bulk_create(
                rates,
                update_conflicts=True,
                unique_fields=["instrument", "venue", "funding_at"],
                update_fields=["rate", "interval_hours", "venue_ts", "received_at", "market"],
            )
        record_heartbeat(
            kind=HEARTBEAT_KIND,
            hostname=self.hostname,
            queues=sorted(o.venue for o in outcomes if o.status == "ok"),
            started_at=self.started_at,
            fresh_connection=False,  # collect_quotes refreshes it before each round
        )
        return outcomes

    def _funding_and_basis(
        self, funding: dict[str, dict], quotes: list[SpotQuote], outcomes: list[VenueOutcome]
    ) -> tuple[list[FundingRate], list[BasisQuote]]:
        """Funding rows from each perpetual's rate; basis rows against the median mid of the same round's spot
        quotes of that instrument (none when no spot venue answered: a basis against nothing is not written)."""
        spot_mids: dict[int, list[tuple[str, Decimal]]] = {}
        for quote in quotes:
            if quote.market_type == MarketType.SPOT and quote.bid < quote.ask:
                spot_mids.setdefault(quote.instrument_id, []).append((quote.venue, (quote.bid + quote.ask) / 2))
        by_venue = {o.venue: o for o in outcomes}
        rates: list[FundingRate] = []
        bases: list[BasisQuote] = []
        now = timezone.now()
        for plan in self.plan:
            for market in plan.markets:
                info = funding.get(plan.venue, {}).get(market.market)
                if not info:
                    continue
                rate = _decimal(info.get("fundingRate"))
                funding_at = _ms_to_datetime(info.get("fundingTimestamp") or info.get("nextFundingTimestamp"))
                venue_ts = _ms_to_datetime(info.get("timestamp"))
                if rate is not None and funding_at is not None:
                    interval = str(info.get("interval") or "")
                    rates.append(
                        FundingRate(
                            venue=plan.venue,
                            instrument_id=market.instrument_id,
                            market=market.market,
                            rate=rate,
                            interval_hours=int(interval[:-1]) if interval.endswith("h") else None,
                            funding_at=funding_at,
                            venue_ts=venue_ts,
                            received_at=now,
                        )
                    )
                    by_venue[plan.venue].funding += 1
                mark, index = _decimal(info.get("markPrice")), _decimal(info.get("indexPrice"))
                spots = spot_mids.get(market.instrument_id, [])
                if not spots or not mark or not index or mark <= 0 or index <= 0:
                    continue
                spot = Decimal(statistics.median(mid for _, mid in spots))
                bases.append(
                    BasisQuote(
                        venue=plan.venue,
                        instrument_id=market.instrument_id,
                        market=market.market,
                        mark=mark,
                        index=index,
                        spot=spot,
                        spot_venues=sorted(v for v, _ in spots),
                        basis=mark - spot,
                        basis_bps=((mark - spot) / spot * 10000).quantize(Decimal("0.0001")),
                        funding_rate=rate,
                        next_funding_at=funding_at,
                        venue_ts=venue_ts,
                        received_at=now,
                    )
                )
                by_venue[plan.venue].basis += 1
        return rates, bases
