"""A futures bot trades a root (``ES``); brokers take a contract. This maps one to the other, and back.

**Front month.** The products we support list on the CME quarterly cycle (H Mar, M Jun, U Sep, Z Dec) and
expire on the third Friday of the contract month. The front contract at a time is the nearest one whose roll
date has not been reached; the roll date is ``roll_business_days`` weekdays before expiry (6 by default: the
Thursday of the week before expiry, CME's own roll date for equity index futures, when volume moves to the next
contract). On and after the roll date the next quarter is traded. Weekdays are counted without exchange
holidays: a holiday in the roll window moves the roll one trading day early, never onto the expiring contract.

**Supported products**: ``ES``, ``NQ``, ``MES``, ``MNQ`` (``ROLL_RULES``; the roll offset is configurable per
product with ``FUTURES_ROLL_BUSINESS_DAYS``, e.g. ``{"ES": 5}``). Any other root is refused with
``ORDER_REJECTED`` naming the supported ones: energy, metals, rates and FX follow other cycles and expiry rules,
and a guessed contract could trade the wrong month. A symbol that already names a contract of a supported
product (``ESZ6``, ``XCME:ES.Z26``) is used as it is.

**Venue forms**: Tradovate ``ESZ6`` (one-digit year, as in its contract library), Ironbeam ``XCME:ES.Z26``
(exchange, root, month code and two-digit year, as in its ``exchSym``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from controlplane.errors import ErrorCode
from integrations.venues.base import VenueError

QUARTERLY = {3: "H", 6: "M", 9: "U", 12: "Z"}
_MONTH_OF_CODE = {code: month for month, code in QUARTERLY.items()}
DEFAULT_ROLL_BUSINESS_DAYS = 6


@dataclass(frozen=True)
class RollRule:
    exchange: str  # Ironbeam's exchange prefix (MIC)
    roll_business_days: int = DEFAULT_ROLL_BUSINESS_DAYS


ROLL_RULES: dict[str, RollRule] = {root: RollRule(exchange="XCME") for root in ("ES", "NQ", "MES", "MNQ")}


@dataclass(frozen=True, order=True)
class Contract:
    year: int
    month: int
    root: str

    @property
    def code(self) -> str:
        return QUARTERLY[self.month]

    @property
    def expiry(self) -> date:
        return third_friday(self.year, self.month)

    def tradovate(self) -> str:
        return f"{self.root}{self.code}{self.year % 10}"

    def ironbeam(self) -> str:
        return f"{ROLL_RULES[self.root].exchange}:{self.root}.{self.code}{self.year % 100:02d}"


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _weekdays_before(day: date, count: int) -> date:
    while count > 0:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def _rule(root: str) -> RollRule:
    rule = ROLL_RULES.get(root)
    if rule is None:
        raise VenueError(
            ErrorCode.ORDER_REJECTED,
            f"No contract roll rule for {root!r}: the front month is only resolved for "
            f"{', '.join(sorted(ROLL_RULES))}. Nothing was sent.",
        )
    days = settings.FUTURES_ROLL_BUSINESS_DAYS.get(root)
    return RollRule(rule.exchange, int(days)) if days is not None else rule


def roll_date(contract: Contract) -> date:
    """The first day the next quarter is traded instead of ``contract``."""
    return _weekdays_before(contract.expiry, _rule(contract.root).roll_business_days)


def front_contract(root: str, at: datetime | None = None) -> Contract:
    """The contract a bot on ``root`` trades at ``at`` (now by default), by the product's roll rule."""
    _rule(root)
    today = (at or timezone.now()).astimezone(UTC).date()
    year, month = today.year, next(m for m in QUARTERLY if m >= today.month)
    while True:
        contract = Contract(year, month, root)
        if today < roll_date(contract):
            return contract
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)


_TRADOVATE = re.compile(r"^(?P<root>[A-Z0-9]+?)(?P<code>[HMUZ])(?P<year>\d)$")
_IRONBEAM = re.compile(r"^(?P<exchange>[A-Z]+):(?P<root>[A-Z0-9]+)\.(?P<code>[HMUZ])(?P<year>\d{2})$")


def tradovate_symbol(symbol: str, at: datetime | None = None) -> str:
    """The Tradovate contract for a root, or the symbol itself when it already names a supported contract."""
    match = _TRADOVATE.match(symbol)
    if match and match["root"] in ROLL_RULES:
        return symbol
    return front_contract(symbol, at).tradovate()


def ironbeam_symbol(symbol: str, at: datetime | None = None) -> str:
    match = _IRONBEAM.match(symbol)
    if match and match["root"] in ROLL_RULES:
        return symbol
    return front_contract(symbol, at).ironbeam()


def root_of(venue_symbol: str) -> str:
    """The root our books use for a venue's contract symbol (Tradovate or Ironbeam form). A contract of a product
    we do not support stays as the venue wrote it, so a reconcile shows it as a difference instead of hiding it."""
    for pattern in (_IRONBEAM, _TRADOVATE):
        match = pattern.match(venue_symbol)
        if match and match["root"] in ROLL_RULES:
            return match["root"]
    return venue_symbol
