"""Polygon.io (now Massive) aggregates through its official client (``massive.RESTClient``, the renamed
``polygon-api-client``).

Bars come back exactly as Polygon sent them: JSON numbers read as exact decimals from their own digits, ``ts`` the
bar's open in UTC, a bar still forming left out. An answer we cannot read is INTEGRATION_BAD_RESPONSE, never an
empty list.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import urllib3
from urllib3.util.retry import Retry

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError, ProviderClient
from integrations.providers.market_data import ProviderBar, status_error, utc

T = TypeVar("T")
# Polygon's (multiplier, timespan) by timeframe: every timeframe we tick on is native there.
POLYGON_SPANS = {
    "1s": (1, "second"),
    "1m": (1, "minute"),
    "5m": (5, "minute"),
    "15m": (15, "minute"),
    "30m": (30, "minute"),
    "1h": (1, "hour"),
    "4h": (4, "hour"),
    "1d": (1, "day"),
}
POLYGON_MAX_LIMIT = 50_000


class _HttpStatus(Exception):
    """An HTTP error status, raised from inside urllib3 before ``massive`` turns it into a bare ``BadResponse``."""

    def __init__(self, status: int, retry_after: str | None):
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


class _StatusRetry(Retry):
    """No retries inside ``massive`` (ours are in ``ProviderClient.with_retries``), and any 4xx/5xx surfaces with
    its status: ``massive`` raises ``BadResponse(body)`` without it, and we need it to tell a refused key from a
    rate limit."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return status_code >= 400

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and response.status >= 400:
            response.drain_conn()
            raise _HttpStatus(response.status, response.headers.get("Retry-After"))
        return super().increment(method, url, response=response, error=error, _pool=_pool, _stacktrace=_stacktrace)


class PolygonClient(ProviderClient):
    """Polygon.io (now Massive) REST through the official ``massive.RESTClient``: the key as a bearer token."""

    provider = "polygon"

    def verify(self) -> dict:
        return self.run("verify", self._one_ticker)

    def _one_ticker(self) -> dict:
        response = self.request(
            "GET",
            "/v3/reference/tickers",
            safe=True,
            params={"limit": 1},
            headers={"Authorization": f"Bearer {self.credential('POLYGON_API_KEY')}"},
        )
        body = self.json(response)
        if body.get("status") not in ("OK", "DELAYED") or not isinstance(body.get("results"), list):
            self.malformed("no status OK with a results list")
        return {"tickers_seen": len(body["results"])}

    def fetch_bars(self, *, ticker: str, timeframe: str, start: datetime, end: datetime) -> list[ProviderBar]:
        """Aggregates of one ticker opening in [start, end) and closed by ``end``, oldest first (``get_aggs``,
        ``/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}``). One page of at most 50,000 bars:
        a longer window is finished by the next fetch, which starts after the latest bar stored."""
        if timeframe not in POLYGON_SPANS:
            raise ValueError(f"Polygon has no aggregate span for {timeframe}")
        start, end = utc(start), utc(end)
        return self.run(
            "aggs.get_aggs", lambda: self.with_retries(lambda: self._get_aggs(ticker, timeframe, start, end), safe=True)
        )

    def _get_aggs(self, ticker: str, timeframe: str, start: datetime, end: datetime) -> list[ProviderBar]:
        from massive import RESTClient

        multiplier, timespan = POLYGON_SPANS[timeframe]
        client = RESTClient(
            api_key=self.credential("POLYGON_API_KEY"),
            base=self.base_url,
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            pagination=False,
            connection_pool_kw={"retries": _StatusRetry(total=0, redirect=0)},
        )
        # from/to in Unix ms bound the bars' start times, both inclusive: the last one wanted opens before end.
        response = self._official(
            lambda: client.get_aggs(
                ticker,
                multiplier,
                timespan,
                start,
                end - timedelta(milliseconds=1),
                adjusted=True,
                sort="asc",
                limit=POLYGON_MAX_LIMIT,
                raw=True,
            )
        )
        body = self._decode(response.data)
        return self._bars(body, timeframe, start, end)

    def _decode(self, data: bytes) -> dict:
        import json

        try:
            body = json.loads(data, parse_float=Decimal)
        except ValueError as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"{self.spec.label} answered with a body that is not JSON.",
                provider=self.provider,
            ) from exc
        if not isinstance(body, dict):
            self.malformed("expected a JSON object")
        return body

    def _bars(self, body: dict, timeframe: str, start: datetime, end: datetime) -> list[ProviderBar]:
        if body.get("status") not in ("OK", "DELAYED"):
            self.malformed(f"status {body.get('status')!r}, not OK or DELAYED")
        results = body.get("results")
        if results is None and body.get("resultsCount") == 0:
            return []
        if not isinstance(results, list):
            self.malformed("no 'results' list")
        span = timedelta(
            seconds=POLYGON_SPANS[timeframe][0]
            * {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[POLYGON_SPANS[timeframe][1]]
        )
        bars = []
        for number, item in enumerate(results, start=1):
            bar = self._bar(item, f"result {number}")
            if start <= bar.ts and bar.ts + span <= end:  # a bar still forming is not a bar yet
                bars.append(bar)
        return sorted(bars, key=lambda bar: bar.ts)

    def _bar(self, item, where: str) -> ProviderBar:
        if not isinstance(item, dict):
            self.malformed(f"{where} is not an object")
        # JSON numbers were parsed to Decimal from their own digits (what repr of the float gives), never binary.
        values = [item.get(key) for key in "ohlcv"]
        millis = item.get("t")
        if not all(
            isinstance(v, (int, Decimal)) and not isinstance(v, bool) and Decimal(v).is_finite() for v in values
        ):
            self.malformed(f"{where} lacks a numeric o, h, l, c or v")
        if not isinstance(millis, int) or isinstance(millis, bool):
            self.malformed(f"{where} lacks an integer t (Unix ms)")
        values = [Decimal(v) for v in values]
        ts = datetime.fromtimestamp(millis // 1000, tz=UTC).replace(microsecond=(millis % 1000) * 1000)
        return ProviderBar(ts, *values, where=where)

    def _official(self, call: Callable[[], T]) -> T:
        """The official client's (and urllib3's) exceptions as our error codes."""
        from massive.exceptions import BadResponse

        label = self.spec.label
        try:
            return call()
        except _HttpStatus as exc:
            raise status_error(label, self.provider, exc.status, exc.retry_after) from exc
        except BadResponse as exc:  # a non-200 success status: not the documented answer
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE, f"{label} answered without HTTP 200.", provider=self.provider
            ) from exc
        except urllib3.exceptions.MaxRetryError as exc:
            timed_out = isinstance(exc.reason, urllib3.exceptions.TimeoutError)
            raise IntegrationError(
                ErrorCode.INTEGRATION_TIMEOUT if timed_out else ErrorCode.INTEGRATION_UNREACHABLE,
                f"{label} did not answer within {self.timeout}s."
                if timed_out
                else f"{label} could not be reached ({type(exc.reason).__name__}).",
                provider=self.provider,
            ) from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_TIMEOUT, f"{label} did not answer within {self.timeout}s.", provider=self.provider
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_UNREACHABLE,
                f"{label} could not be reached ({type(exc).__name__}).",
                provider=self.provider,
            ) from exc
