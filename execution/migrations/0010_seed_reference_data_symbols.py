"""Provider symbols of the seeded reference instruments, only where the mapping is certain.

Every CME root is on Databento's CME Globex dataset (GLBX.MDP3, which also carries CBOT, NYMEX and COMEX); our root
means the continuous front contract, which Databento names ``ROOT.c.0`` (calendar roll, stype ``continuous``).
Polygon's crypto aggregates name BTC and ETH against USD ``X:BTCUSD`` and ``X:ETHUSD``. Left out: Polygon for
futures (another product with its own tickers) and Databento for Coinbase spot (not a Databento dataset).
An instrument an operator already mapped is left as it is.
"""

from django.db import migrations

CME_ROOTS = ("ES", "MES", "NQ", "MNQ", "YM", "RTY", "ZN", "ZB", "CL", "GC", "6E")
CRYPTO_TICKERS = {"BTC-USD": "X:BTCUSD", "ETH-USD": "X:ETHUSD"}


def reference_symbols() -> dict[str, dict]:
    mapping = {
        root: {"databento": {"dataset": "GLBX.MDP3", "symbol": f"{root}.c.0", "stype_in": "continuous"}}
        for root in CME_ROOTS
    }
    mapping.update({symbol: {"polygon": {"ticker": ticker}} for symbol, ticker in CRYPTO_TICKERS.items()})
    return mapping


def fill(apps, schema_editor):
    Instrument = apps.get_model("execution", "Instrument")
    alias = schema_editor.connection.alias
    for symbol, data_symbols in reference_symbols().items():
        Instrument.objects.using(alias).filter(symbol=symbol, data_symbols={}).update(data_symbols=data_symbols)


class Migration(migrations.Migration):
    dependencies = [("execution", "0009_instrument_data_symbols")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
