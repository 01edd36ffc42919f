"""python manage.py import_bars FILE --instrument SYMBOL --timeframe 1m: load a CSV or Databento DBN file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from execution.marketdata.barfiles import BarFileInvalid, read_bar_file
from execution.models import Bar
from execution.marketdata.selectors import instrument_by_symbol
from execution.marketdata.services import bars_ingest
from bots.timeframes import TIMEFRAME_SECONDS


class Command(BaseCommand):
    help = (
        "Import bars from a CSV (header ts,open,high,low,close,volume; ISO-8601 ts with offset) or a Databento "
        "DBN file (.dbn, .dbn.zst). All or nothing: any malformed row is reported with its line and nothing "
        "of the file is imported. Bars already stored are skipped, so running it twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--instrument", required=True, help="Instrument symbol, e.g. ES or BTC-USD.")
        parser.add_argument("--timeframe", required=True, choices=sorted(TIMEFRAME_SECONDS, key=TIMEFRAME_SECONDS.get))

    def handle(self, *args, file, instrument, timeframe, **options):
        target = instrument_by_symbol(instrument)
        if target is None:
            raise CommandError(f"No instrument {instrument!r}; add it in admin (Execution > Instruments) first.")
        try:
            rows = read_bar_file(file, timeframe=timeframe)
        except BarFileInvalid as exc:
            raise CommandError(str(exc)) from exc
        # The audit event is platform-wide (every tenant reads it): the file's name says which import it was, its
        # directory would tell every tenant how this server is laid out.
        result = bars_ingest(
            instrument=target,
            timeframe=timeframe,
            rows=rows,
            source=Bar.Source.IMPORTED,
            actor_name="import_bars",
            origin=Path(file).name,
        )
        self.stdout.write(
            f"Imported {result.inserted} {timeframe} bars for {target.symbol} from {file} "
            f"({result.already_stored} already stored), {result.first_ts.isoformat()} to {result.last_ts.isoformat()}."
        )
