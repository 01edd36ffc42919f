"""import_bars: CSV and DBN files, validated row by row, all or nothing, idempotent."""

from datetime import UTC, datetime

import databento_dbn
import pytest
from django.core.management import CommandError, call_command

from controlplane.models import AuditEvent
from execution.models import Bar
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db
HEADER = "ts,open,high,low,close,volume\n"
GOOD_ROWS = [
    "2026-11-24T15:00:00+00:00,100.25,101.00,100.00,100.75,12\n",
    "2026-11-24T09:01:00-06:00,100.75,101.25,100.50,101.00,7\n",  # 15:01 UTC, written in Chicago time
    "2026-11-24T15:02:00Z,101.00,101.50,100.75,101.25,0\n",
]


@pytest.fixture
def es():
    return InstrumentFactory(symbol="ESIMPORT", calendar="CME_Equity")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def import_bars(path, symbol="ESIMPORT", timeframe="1m"):
    from io import StringIO

    out = StringIO()
    call_command("import_bars", str(path), "--instrument", symbol, "--timeframe", timeframe, stdout=out)
    return out.getvalue()


def test_a_csv_imports_as_imported_bars_once(tmp_path, es):
    path = write(tmp_path, "es.csv", HEADER + "".join(GOOD_ROWS))
    assert "Imported 3 1m bars for ESIMPORT" in import_bars(path)
    bars = list(Bar.objects.filter(instrument=es).order_by("ts"))
    assert [b.ts for b in bars] == [datetime(2026, 11, 24, 15, m, tzinfo=UTC) for m in range(3)]
    assert {b.source for b in bars} == {Bar.Source.IMPORTED}
    assert str(bars[0].open) == "100.250000000"
    event = AuditEvent.unscoped.get(action="bars.ingest", resource_id="ESIMPORT")
    assert event.tenant_id is None and event.after_state["inserted"] == 3

    assert "Imported 0 1m bars for ESIMPORT" in import_bars(path)
    assert "(3 already stored)" in import_bars(path)
    assert Bar.objects.filter(instrument=es).count() == 3


def test_the_platform_audit_event_names_the_file_not_its_server_path(tmp_path, es, api_viewer_a):
    import_bars(write(tmp_path, "es-november.csv", HEADER + "".join(GOOD_ROWS)))
    [event] = api_viewer_a.get("/api/audit-events?action=bars.ingest").json()["results"]
    assert event["tenant"] is None
    assert event["after_state"]["origin"] == "es-november.csv"
    assert str(tmp_path) not in str(event)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("2026-11-24T15:03:00+00:00,100,99,100,100,1\n", "line 5: high 99 is below low 100"),
        ("2026-11-24T15:03:00+00:00,0,1,0,1,1\n", "line 5: open 0 is not positive"),
        ("2026-11-24T15:03:00+00:00,102,101,100,100.5,1\n", "line 5: open 102 is outside low 100 .. high 101"),
        ("2026-11-24T15:03:30+00:00,100,101,100,100,1\n", "line 5: ts 2026-11-24T15:03:30+00:00 is not on the 1m grid"),
        ("2026-11-24T15:03:00,100,101,100,100,1\n", "line 5: ts '2026-11-24T15:03:00' has no UTC offset"),
        ("2026-11-24T15:01:00+00:00,100,101,100,100,1\n", "line 5: ts 2026-11-24T15:01:00+00:00 repeats line 3"),
        ("2026-11-24T15:03:00+00:00,abc,101,100,100,1\n", "line 5: open 'abc' is not a number"),
        ("2026-11-24T15:03:00+00:00,100,101,100,100,-1\n", "line 5: volume -1 is negative"),
        ("2026-11-24T15:03:00+00:00,100,101,100\n", "line 5: expected 6 fields, found 4"),
    ],
)
def test_a_malformed_row_is_reported_by_line_and_nothing_is_imported(tmp_path, es, bad_row, message):
    path = write(tmp_path, "bad.csv", HEADER + "".join(GOOD_ROWS) + bad_row)
    with pytest.raises(CommandError) as excinfo:
        import_bars(path)
    assert message in str(excinfo.value)
    assert "nothing imported" in str(excinfo.value)
    assert not Bar.objects.filter(instrument=es).exists()
    assert not AuditEvent.unscoped.filter(action="bars.ingest").exists()


def test_a_wrong_header_is_line_1(tmp_path, es):
    path = write(tmp_path, "bad.csv", "time,o,h,l,c,v\n" + GOOD_ROWS[0])
    with pytest.raises(CommandError, match="line 1: header must be ts,open,high,low,close,volume"):
        import_bars(path)


def test_an_unknown_instrument_is_refused(tmp_path, es):
    path = write(tmp_path, "es.csv", HEADER + GOOD_ROWS[0])
    with pytest.raises(CommandError, match="No instrument 'NOPE'"):
        import_bars(path, symbol="NOPE")


def dbn_bytes(records, *, schema=databento_dbn.Schema.OHLCV_1M, rtype=databento_dbn.RType.OHLCV_1M, symbols=("ESZ6",)):
    metadata = databento_dbn.Metadata(
        dataset="GLBX.MDP3",
        start=records[0][0],
        stype_in=databento_dbn.SType.RAW_SYMBOL,
        stype_out=databento_dbn.SType.INSTRUMENT_ID,
        schema=schema,
        symbols=list(symbols),
    )
    scale = 1_000_000_000
    body = b"".join(
        bytes(
            databento_dbn.OHLCVMsg(
                int(rtype), 1, 4242, ts, int(o * scale), int(h * scale), int(l * scale), int(c * scale), volume
            )
        )
        for ts, o, h, l, c, volume in records
    )
    return bytes(metadata) + body


def ns(minute: int) -> int:
    return int(datetime(2026, 11, 24, 15, minute, tzinfo=UTC).timestamp()) * 1_000_000_000


def test_a_databento_dbn_file_imports(tmp_path, es):
    path = tmp_path / "es.dbn"
    path.write_bytes(
        dbn_bytes([(ns(0), 4500.25, 4501.0, 4499.75, 4500.5, 12), (ns(1), 4500.5, 4502.0, 4500.0, 4501.75, 30)])
    )
    assert "Imported 2 1m bars" in import_bars(path)
    last = Bar.objects.filter(instrument=es).latest("ts")
    assert last.ts == datetime(2026, 11, 24, 15, 1, tzinfo=UTC)
    assert str(last.close) == "4501.750000000" and last.volume == 30 and last.source == "imported"


def test_a_malformed_dbn_record_is_reported_by_number_and_nothing_is_imported(tmp_path, es):
    path = tmp_path / "es.dbn"
    path.write_bytes(
        dbn_bytes([(ns(0), 4500.25, 4501.0, 4499.75, 4500.5, 12), (ns(1), 4500.5, 4499.0, 4500.0, 4500.0, 30)])
    )
    with pytest.raises(CommandError, match="record 2: high 4499 is below low 4500"):
        import_bars(path)
    assert not Bar.objects.filter(instrument=es).exists()


def test_a_dbn_file_of_another_schema_is_refused(tmp_path, es):
    path = tmp_path / "es.dbn"
    path.write_bytes(
        dbn_bytes(
            [(ns(0), 4500.25, 4501.0, 4499.75, 4500.5, 12)],
            schema=databento_dbn.Schema.OHLCV_1H,
            rtype=databento_dbn.RType.OHLCV_1H,
        )
    )
    with pytest.raises(CommandError, match="schema is ohlcv-1h, but --timeframe 1m needs ohlcv-1m"):
        import_bars(path)


def test_a_dbn_file_with_several_symbols_is_refused(tmp_path, es):
    path = tmp_path / "es.dbn"
    path.write_bytes(dbn_bytes([(ns(0), 4500.25, 4501.0, 4499.75, 4500.5, 12)], symbols=("ESZ6", "NQZ6")))
    with pytest.raises(CommandError, match="holds 2 symbols"):
        import_bars(path)


def test_a_large_file_imports_in_one_copy(tmp_path, es):
    lines = [HEADER]
    start = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())
    for i in range(20_000):
        ts = datetime.fromtimestamp(start + 60 * i, tz=UTC).isoformat()
        lines.append(f"{ts},100,101,99,100.5,{i}\n")
    path = write(tmp_path, "big.csv", "".join(lines))
    assert "Imported 20000 1m bars" in import_bars(path)
    assert Bar.objects.filter(instrument=es).count() == 20_000


def test_a_few_rows_store_only_the_new_ones_with_their_exact_values(es):
    """Up to ``_ARRAY_ROWS`` rows go in one INSERT from arrays (no staging table): the same result as through COPY."""
    from decimal import Decimal

    from execution.marketdata.barfiles import BarRow
    from execution.marketdata.services import bars_ingest

    def row(minute, close):
        ts = datetime(2026, 11, 24, 15, minute, tzinfo=UTC)
        return BarRow(ts, Decimal("100.25"), Decimal("101"), Decimal("99.5"), close, Decimal("7.5"), where=str(minute))

    first = bars_ingest(instrument=es, timeframe="1m", rows=[row(0, Decimal("100"))], source="imported", actor_name="t")
    again = bars_ingest(
        instrument=es,
        timeframe="1m",
        rows=[row(0, Decimal("100.5")), row(1, Decimal("100.123456789"))],
        source="imported",
        actor_name="t",
    )
    assert (first.inserted, again.inserted, again.already_stored) == (1, 1, 1)
    bars = list(Bar.objects.filter(instrument=es).order_by("ts").values_list("close", "volume", "source"))
    assert bars == [
        (Decimal("100"), Decimal("7.5"), Bar.Source.IMPORTED),
        (Decimal("100.123456789"), Decimal("7.5"), Bar.Source.IMPORTED),
    ]
