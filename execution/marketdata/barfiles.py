"""Reading bar files (CSV and Databento DBN) into validated rows, all or nothing.

Every problem names where it is (``line 7`` of a CSV, ``record 7`` of a DBN file) and what is wrong; a file
with any problem yields no rows at all, so an import never leaves half a file behind.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bots.timeframes import is_on_grid, timeframe_seconds
from integrations.providers.databento.client import DATABENTO_SCHEMAS, decode_dbn_ohlcv
from integrations.providers.market_data import ProviderBar

CSV_HEADER = ["ts", "open", "high", "low", "close", "volume"]
DBN_SUFFIXES = (".dbn", ".dbn.zst")
MAX_PROBLEMS_LISTED = 50
DBN_SCHEMAS = DATABENTO_SCHEMAS


# One bar shape for files and providers; ``where`` names the line, record or result for problem reports.
BarRow = ProviderBar


class BarFileInvalid(ValueError):
    """The file cannot be imported; ``problems`` lists each one with its line or record number."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        listed = problems[:MAX_PROBLEMS_LISTED]
        more = len(problems) - len(listed)
        text = "\n".join(f"  {p}" for p in listed) + (f"\n  ... and {more} more" if more else "")
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n{text}")


def read_bar_file(path: str | Path, *, timeframe: str) -> list[BarRow]:
    """Validated rows of a CSV or DBN file (by suffix), sorted by ts; raises :class:`BarFileInvalid`."""
    path = Path(path)
    timeframe_seconds(timeframe)
    if not path.is_file():
        raise BarFileInvalid(str(path), ["file not found"])
    if path.name.lower().endswith(DBN_SUFFIXES):
        rows, problems = _parse_dbn(path, timeframe)
    else:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            rows, problems = parse_csv(stream)
    problems += validate_rows(rows, timeframe)
    if problems:
        raise BarFileInvalid(str(path), problems)
    if not rows:
        raise BarFileInvalid(str(path), ["the file holds no bars"])
    return sorted(rows, key=lambda row: row.ts)


def parse_csv(stream: io.TextIOBase) -> tuple[list[BarRow], list[str]]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None or [column.strip().lower() for column in header] != CSV_HEADER:
        return [], [f"line 1: header must be {','.join(CSV_HEADER)}, found {','.join(header or [])!r}"]
    rows, problems = [], []
    for line_number, fields in enumerate(reader, start=2):
        if not fields or all(not field.strip() for field in fields):
            continue
        where = f"line {line_number}"
        if len(fields) != len(CSV_HEADER):
            problems.append(f"{where}: expected {len(CSV_HEADER)} fields, found {len(fields)}")
            continue
        row_problems: list[str] = []
        ts = _parse_ts(fields[0].strip(), where, row_problems)
        values = [
            _parse_decimal(name, text.strip(), where, row_problems)
            for name, text in zip(CSV_HEADER[1:], fields[1:], strict=True)
        ]
        if row_problems:
            problems.extend(row_problems)
        else:
            rows.append(BarRow(ts, *values, where=where))
    return rows, problems


def _parse_ts(text: str, where: str, problems: list[str]) -> datetime | None:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{where}: ts {text!r} is not an ISO-8601 timestamp")
        return None
    if ts.tzinfo is None:
        problems.append(f"{where}: ts {text!r} has no UTC offset (write it as 2026-01-05T14:30:00+00:00)")
        return None
    return ts.astimezone(UTC)


def _parse_decimal(name: str, text: str, where: str, problems: list[str]) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.append(f"{where}: {name} {text!r} is not a number")
        return None
    if not value.is_finite():
        problems.append(f"{where}: {name} {text!r} is not a finite number")
        return None
    return value


def _parse_dbn(path: Path, timeframe: str) -> tuple[list[BarRow], list[str]]:
    import databento

    expected_schema = DBN_SCHEMAS.get(timeframe)
    if expected_schema is None:
        return [], [f"DBN files hold {', '.join(DBN_SCHEMAS)} bars, not {timeframe}; import a CSV instead"]
    try:
        store = databento.DBNStore.from_file(path)
    except Exception as exc:  # the decoder raises several types for a corrupt file
        return [], [f"not a readable DBN file: {exc}"]
    schema = str(store.schema) if store.schema is not None else None
    if schema != expected_schema:
        return [], [f"the file's schema is {schema}, but --timeframe {timeframe} needs {expected_schema}"]
    if len(store.symbols) > 1:
        return [], [f"the file holds {len(store.symbols)} symbols ({', '.join(store.symbols)}); import one at a time"]
    bars, problems = decode_dbn_ohlcv(store)
    return [
        BarRow(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, where=bar.where) for bar in bars
    ], problems


def validate_rows(rows: list[BarRow], timeframe: str) -> list[str]:
    """OHLC consistency, positive prices, the timeframe's grid and no repeated ts."""
    problems = []
    first_seen: dict[datetime, str] = {}
    for row in rows:
        where = row.where
        for name in ("open", "high", "low", "close"):
            if getattr(row, name) <= 0:
                problems.append(f"{where}: {name} {getattr(row, name)} is not positive")
        if row.volume < 0:
            problems.append(f"{where}: volume {row.volume} is negative")
        if row.high < row.low:
            problems.append(f"{where}: high {row.high} is below low {row.low}")
        for name in ("open", "close"):
            value = getattr(row, name)
            if not row.low <= value <= row.high:
                problems.append(f"{where}: {name} {value} is outside low {row.low} .. high {row.high}")
        if not is_on_grid(row.ts, timeframe):
            problems.append(f"{where}: ts {row.ts.isoformat()} is not on the {timeframe} grid")
        if row.ts in first_seen:
            problems.append(f"{where}: ts {row.ts.isoformat()} repeats {first_seen[row.ts]}")
        else:
            first_seen[row.ts] = where
    return problems
