"""Market-data providers through their official clients: Databento (``databento.Historical``) and Polygon
(``massive.RESTClient``, the renamed ``polygon-api-client``).

Both return :class:`ProviderBar` rows exactly as the provider sent them: prices as exact decimals (Databento's
fixed-point 1e-9 integers divided out, Polygon's floats through ``repr``), ``ts`` the bar's open in UTC. Nothing is
filled in: a bar the provider did not send does not exist, and an answer we cannot read is
INTEGRATION_BAD_RESPONSE, never an empty list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import requests
import urllib3
from urllib3.util.retry import Retry

from integrations.clients.base import ErrorCode, IntegrationError, ProviderClient

T = TypeVar("T")
_DBN_PRICE_SCALE = Decimal(1_000_000_000)
# Databento's OHLCV schemas by timeframe; other timeframes are built from ohlcv-1m by the caller.
DATABENTO_SCHEMAS = {"1s": "ohlcv-1s", "1m": "ohlcv-1m", "1h": "ohlcv-1h", "1d": "ohlcv-1d"}
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


@dataclass(frozen=True)
class ProviderBar:
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    where: str  # "record 7" (DBN) or "result 7" (JSON), for problem reports


def decode_dbn_ohlcv(records: Iterable) -> tuple[list[ProviderBar], list[str]]:
    """Bars of DBN OHLCV records (a ``DBNStore`` or any iterable of them), each bad record a numbered problem."""
    import databento_dbn

    bars, problems = [], []
    try:
        for number, record in enumerate(records, start=1):
            where = f"record {number}"
            if not isinstance(record, databento_dbn.OHLCVMsg):
                problems.append(f"{where}: not an OHLCV record ({type(record).__name__})")
                continue
            prices = [record.open, record.high, record.low, record.close]
            if any(price == databento_dbn.UNDEF_PRICE for price in prices):
                problems.append(f"{where}: a price is undefined")
                continue
            if record.ts_event % 1000:
                problems.append(f"{where}: ts_event {record.ts_event} has sub-microsecond precision")
                continue
            open_, high, low, close = (Decimal(price) / _DBN_PRICE_SCALE for price in prices)
            ts = datetime.fromtimestamp(record.ts_event // 1_000_000_000, tz=UTC).replace(
                microsecond=(record.ts_event % 1_000_000_000) // 1000
            )
            bars.append(ProviderBar(ts, open_, high, low, close, Decimal(record.volume), where=where))
    except Exception as exc:  # the decoder raises several types for truncated or corrupt data
        problems.append(f"the data is truncated or corrupt after {len(bars)} records: {exc}")
    return bars, problems


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("bar windows are timezone-aware (UTC)")
    return at.astimezone(UTC)


class DatabentoClient(ProviderClient):
    """Databento's historical API through the official ``databento.Historical`` client (HTTP basic auth, the key
    as user name). The registry's base URL is the client's gateway; the official client always speaks HTTPS to it."""

    provider = "databento"

    def verify(self) -> dict:
        return self.run("verify", self._list_datasets)

    def list_datasets(self) -> list[str]:
        return self.run("metadata.list_datasets", self._list_datasets_raw)

    def _list_datasets_raw(self) -> list[str]:
        response = self.request(
            "GET", "/v0/metadata.list_datasets", safe=True, auth=(self.credential("DATABENTO_API_KEY"), "")
        )
        datasets = self.json(response, expect=list)
        if not all(isinstance(d, str) for d in datasets):
            self.malformed("datasets are not strings")
        return datasets

    def _list_datasets(self) -> dict:
        return {"datasets": len(self._list_datasets_raw())}

    def fetch_bars(
        self, *, dataset: str, symbol: str, stype_in: str = "raw_symbol", timeframe: str, start: datetime, end: datetime
    ) -> list[ProviderBar]:
        """OHLCV bars of one symbol opening in [start, end), oldest first (``timeseries.get_range``)."""
        schema = DATABENTO_SCHEMAS.get(timeframe)
        if schema is None:
            raise ValueError(
                f"Databento has no OHLCV schema for {timeframe}; fetch 1m and resample "
                f"(native: {', '.join(DATABENTO_SCHEMAS)})"
            )
        start, end = _utc(start), _utc(end)
        return self.run(
            "timeseries.get_range",
            lambda: self.with_retries(
                lambda: self._get_range(dataset, symbol, stype_in, schema, start, end), safe=True
            ),
        )

    def _get_range(
        self, dataset: str, symbol: str, stype_in: str, schema: str, start: datetime, end: datetime
    ) -> list[ProviderBar]:
        import databento

        historical = databento.Historical(key=self.credential("DATABENTO_API_KEY"), gateway=self.base_url)
        historical.timeseries.TIMEOUT = self.timeout
        store = self._official(
            lambda: historical.timeseries.get_range(
                dataset=dataset, symbols=[symbol], stype_in=stype_in, schema=schema, start=start, end=end
            )
        )
        if store.schema is not None and str(store.schema) != schema:
            self.malformed(f"asked for {schema}, got {store.schema}")
        bars, problems = decode_dbn_ohlcv(store)
        if problems:
            self.malformed("; ".join(problems[:5]))
        return sorted(bars, key=lambda bar: bar.ts)

    def _official(self, call: Callable[[], T]) -> T:
        """The official client's exceptions as our error codes."""
        from databento.common.error import BentoClientError, BentoError, BentoServerError

        label = self.spec.label
        try:
            return call()
        except (BentoClientError, BentoServerError) as exc:
            body = exc.json_body if isinstance(exc.json_body, dict) else {}
            detail = f" ({body['detail']})" if body.get("detail") else ""
            raise _status_error(
                label, self.provider, exc.http_status, (exc.headers or {}).get("Retry-After"), detail
            ) from exc
        except requests.Timeout as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_TIMEOUT, f"{label} did not answer within {self.timeout}s.", provider=self.provider
            ) from exc
        except requests.RequestException as exc:
            raise IntegrationError(
                ErrorCode.INTEGRATION_UNREACHABLE,
                f"{label} could not be reached ({type(exc).__name__}).",
                provider=self.provider,
            ) from exc
        except BentoError as exc:
            if str(exc).startswith("Error streaming response"):  # the connection broke off mid-answer
                raise IntegrationError(
                    ErrorCode.INTEGRATION_UNREACHABLE, f"{label} stopped mid-answer: {exc}", provider=self.provider
                ) from exc
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,  # DBNStore cannot read the body
                f"{label} answered with data that is not DBN: {exc}",
                provider=self.provider,
            ) from exc
        except ValueError as exc:  # DBNStore cannot read the body
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"{label} answered with data that is not DBN: {exc}",
                provider=self.provider,
            ) from exc


def _status_error(
    label: str, provider: str, status: int, retry_after: str | None, detail: str = ""
) -> IntegrationError:
    """An HTTP error status from either provider's official client as our code: a refused key, a rate limit (with
    the provider's wait), a timeout, the provider failing, or a request it would not take."""
    if status in (401, 403):
        return IntegrationError(
            ErrorCode.INTEGRATION_AUTH_FAILED, f"{label} refused the credentials (HTTP {status}).", provider=provider
        )
    if status == 429:
        return IntegrationError(
            ErrorCode.INTEGRATION_RATE_LIMITED,
            f"{label} is rate limiting us (HTTP 429).",
            provider=provider,
            sent=True,
            retry_after=_seconds(retry_after),
        )
    if status in (408, 504):
        return IntegrationError(ErrorCode.INTEGRATION_TIMEOUT, f"{label} timed out (HTTP {status}).", provider=provider)
    if status >= 500:
        return IntegrationError(
            ErrorCode.INTEGRATION_UNREACHABLE, f"{label} failed (HTTP {status}).", provider=provider
        )
    return IntegrationError(
        ErrorCode.INTEGRATION_BAD_RESPONSE, f"{label} rejected the request (HTTP {status}){detail}.", provider=provider
    )


def _seconds(value) -> float | None:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return None


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
        start, end = _utc(start), _utc(end)
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
            raise _status_error(label, self.provider, exc.status, exc.retry_after) from exc
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
