"""Databento's historical API through its official client (``databento.Historical``, DBN over HTTPS).

Bars come back exactly as Databento sent them: its fixed-point 1e-9 prices divided out to exact decimals, ``ts``
the bar's open in UTC. A record we cannot read is INTEGRATION_BAD_RESPONSE, never a bar left out quietly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import requests

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError, ProviderClient
from integrations.providers.market_data import ProviderBar, status_error, utc

T = TypeVar("T")
_DBN_PRICE_SCALE = Decimal(1_000_000_000)
# Databento's OHLCV schemas by timeframe; other timeframes are built from ohlcv-1m by the caller.
DATABENTO_SCHEMAS = {"1s": "ohlcv-1s", "1m": "ohlcv-1m", "1h": "ohlcv-1h", "1d": "ohlcv-1d"}


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
        start, end = utc(start), utc(end)
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
            raise status_error(
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
