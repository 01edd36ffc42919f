"""The instruments a fresh install trades out of the box: CME futures roots (continuous front contract) and
crypto spot. Specs as published by the exchanges; operators add more in admin."""

from decimal import Decimal

from django.db import migrations

REFERENCE_INSTRUMENTS = [
    # symbol, venue, asset class, tick size, multiplier, calendar
    ("ES", "CME", "future", "0.25", "50", "CME_Equity"),
    ("MES", "CME", "future", "0.25", "5", "CME_Equity"),
    ("NQ", "CME", "future", "0.25", "20", "CME_Equity"),
    ("MNQ", "CME", "future", "0.25", "2", "CME_Equity"),
    ("YM", "CBOT", "future", "1", "5", "CME_Equity"),
    ("RTY", "CME", "future", "0.1", "50", "CME_Equity"),
    ("ZN", "CBOT", "future", "0.015625", "1000", "CME_Bond"),
    ("ZB", "CBOT", "future", "0.03125", "1000", "CME_Bond"),
    ("CL", "NYMEX", "future", "0.01", "1000", "CMEGlobex_Energy"),
    ("GC", "COMEX", "future", "0.1", "100", "CMEGlobex_Metals"),
    ("6E", "CME", "future", "0.00005", "125000", "CMEGlobex_FX"),
    ("BTC-USD", "COINBASE", "crypto", "0.01", "1", "24/7"),
    ("ETH-USD", "COINBASE", "crypto", "0.01", "1", "24/7"),
]


def seed(apps, schema_editor):
    Instrument = apps.get_model("execution", "Instrument")
    alias = schema_editor.connection.alias
    for symbol, venue, asset_class, tick_size, multiplier, calendar in REFERENCE_INSTRUMENTS:
        Instrument.objects.using(alias).get_or_create(
            symbol=symbol,
            defaults={
                "venue": venue,
                "asset_class": asset_class,
                "tick_size": Decimal(tick_size),
                "multiplier": Decimal(multiplier),
                "calendar": calendar,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("execution", "0001_instruments_and_bars")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
