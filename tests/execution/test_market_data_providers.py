"""Market data from Databento (official ``databento`` client, DBN over HTTPS) and Polygon (official ``massive``
client, JSON), fetched for running bots' instruments by the beat task, against local servers speaking the
providers' documented shapes."""

import base64
import datetime as dt
import importlib
import re
import ssl
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import connection
from pytest_httpserver import HTTPServer
from werkzeug import Response

from bots import services as bot_services
from controlplane import tenancy
from execution import tasks
from execution.marketdata.data_symbols import validate_data_symbols
from execution.marketdata.refresh import refresh_bars
from execution.models import Bar, Instrument
from execution.marketdata.selectors import market_data_problems
from execution.marketdata.services import bars_ingest
from integrations import services as integration_services
from integrations.clients import client_for
from integrations.models import IntegrationUsageEvent
from integrations.providers.base import IntegrationError
from integrations.providers.databento import fake as databento_fake
from integrations.providers.databento.fake import dbn, ns
from integrations.providers.polygon import fake as polygon_fake
from integrations.providers.polygon.fake import agg, aggs_body, ms
from tests.execution.helpers import bar_rows
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 18, 15, 3, 20, tzinfo=UTC)  # bars up to 15:02 have closed
T0 = dt.datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
BTC_MAPPING = {"polygon": {"ticker": "X:BTCUSD"}}
ES_MAPPING = {"databento": {"dataset": "GLBX.MDP3", "symbol": "ES.c.0", "stype_in": "continuous"}}
POLYGON_KEY = "pk-test-1234567890"
DATABENTO_KEY = "db-test-1234567890abcdef"


@pytest.fixture(autouse=True)
def short_warmup(settings):
    settings.MARKET_DATA_WARMUP_BARS = 10


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for localhost: the official Databento client only speaks HTTPS to its gateway."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def databento_server(tls_files, settings, monkeypatch):
    cert_path, key_path = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = HTTPServer(host="localhost", port=0, ssl_context=context)
    server.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    settings.INTEGRATION_BASE_URLS = {**settings.INTEGRATION_BASE_URLS, "databento": f"https://localhost:{server.port}"}
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def polygon_server(httpserver, settings):
    settings.INTEGRATION_BASE_URLS = {**settings.INTEGRATION_BASE_URLS, "polygon": httpserver.url_for("").rstrip("/")}
    return httpserver


def instrument(symbol, data_symbols, **spec):
    defaults = {
        "venue": "COINBASE",
        "asset_class": "crypto",
        "tick_size": "0.01",
        "multiplier": "1",
        "calendar": "24/7",
    }
    if symbol == "ES":
        defaults = {
            "venue": "CME",
            "asset_class": "future",
            "tick_size": "0.25",
            "multiplier": "50",
            "calendar": "CME_Equity",
        }
    obj, _ = Instrument.objects.get_or_create(symbol=symbol, defaults={**defaults, **spec})
    obj.data_symbols = data_symbols
    obj.save(update_fields=["data_symbols"])
    return obj


def set_key(tenant, owner, provider, value, server):
    """Set the tenant's key and verify it for real against the test server (a bot starts only on verified keys)."""
    name = {"polygon": "POLYGON_API_KEY", "databento": "DATABENTO_API_KEY"}[provider]
    {"polygon": polygon_fake, "databento": databento_fake}[provider].serve_verify(server)
    with tenancy.tenant_context(tenant.id):
        integration_services.credentials_set(provider=provider, values={name: value}, actor=owner)
        assert integration_services.verify_provider(provider=provider, actor=owner).status == "ok"


def running_bot(tenant, owner, *, source, symbols, name="md-bot", timeframe="1m", start=True):
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="ma_crossover",
            parameters={"fast": 2, "slow": 3},
            instruments=list(symbols),
            timeframe=timeframe,
            data_source=source,
        )
        if start:
            bot_services.runner_start(bot_id=bot.id, actor=owner)
    return bot


def usage(tenant, provider):
    with tenancy.tenant_context(tenant.id):
        return list(IntegrationUsageEvent.objects.filter(provider=provider).exclude(operation="verify").order_by("id"))


def stored(symbol, timeframe="1m"):
    return list(Bar.objects.filter(instrument__symbol=symbol, timeframe=timeframe).order_by("ts"))


# --- Polygon --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_polygon_aggregates_are_fetched_after_the_latest_bar_and_ingested_exactly(
    polygon_server, tenant_a, owner_a, tenant_b
):
    btc = instrument("BTC-USD", BTC_MAPPING)
    bars_ingest(
        instrument=btc,
        timeframe="1m",
        rows=bar_rows(T0 - dt.timedelta(minutes=1), 1, base="64000"),
        source="imported",
        actor_name="test",
    )
    set_key(tenant_a, owner_a, "polygon", POLYGON_KEY, polygon_server)
    bot = running_bot(tenant_a, owner_a, source="polygon", symbols=["BTC-USD"])
    path = f"/v2/aggs/ticker/X:BTCUSD/range/1/minute/{ms(T0)}/{ms(NOW.replace(second=0)) - 1}"
    polygon_server.expect_oneshot_request(
        path,
        query_string={"adjusted": "true", "sort": "asc", "limit": "50000"},
        headers={"Authorization": f"Bearer {POLYGON_KEY}"},
    ).respond_with_json(
        aggs_body(
            [
                agg(T0, 64123.45, 64130.1, 64100.05, 64120.3, 1.25),
                agg(T0 + dt.timedelta(minutes=1), 64120.3, 64121, 64110.7, 64111.11, 0.5),
                agg(T0 + dt.timedelta(minutes=2), 64111.11, 64150, 64111.11, 64149.99, 2),
            ]
        )
    )

    [outcome] = refresh_bars(timeframe="1m", now=NOW)

    polygon_server.check_assertions()
    assert (outcome.status, outcome.inserted, outcome.tenant_id) == ("ingested", 3, tenant_a.id)
    new = stored("BTC-USD")[1:]
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.source) for b in new][0] == (
        T0,
        Decimal("64123.45"),
        Decimal("64130.1"),
        Decimal("64100.05"),
        Decimal("64120.3"),
        Decimal("1.25"),
        "polygon",
    )
    assert [b.ts for b in new] == [T0 + dt.timedelta(minutes=i) for i in range(3)]
    [event] = usage(tenant_a, "polygon")
    assert (event.operation, event.status, event.bot_id, event.error_code) == ("aggs.get_aggs", "ok", bot.id, "")
    assert event.trace_id
    assert usage(tenant_b, "polygon") == []


@pytest.mark.django_db
def test_polygon_drops_a_bar_still_forming_and_never_invents_a_missing_one(polygon_server, tenant_a, owner_a):
    instrument("BTC-USD", BTC_MAPPING)
    set_key(tenant_a, owner_a, "polygon", POLYGON_KEY, polygon_server)
    polygon_server.expect_request(re.compile("/v2/aggs/ticker/X:BTCUSD/range/1/minute/.*")).respond_with_json(
        aggs_body(
            [
                agg(T0, 10, 11, 9, 10.5, 1),
                agg(T0 + dt.timedelta(minutes=2), 10, 11, 9, 10.5, 1),
                agg(T0 + dt.timedelta(minutes=3), 10, 11, 9, 10.5, 1),
            ]
        )
    )  # 15:03 has not closed at 15:03:20
    with tenancy.tenant_context(tenant_a.id):
        bars = client_for("polygon").fetch_bars(
            ticker="X:BTCUSD", timeframe="1m", start=T0, end=T0 + dt.timedelta(minutes=3)
        )
    assert [b.ts for b in bars] == [T0, T0 + dt.timedelta(minutes=2)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, {"status": "ERROR", "request_id": "x", "error": "Unknown API Key"}, "INTEGRATION_AUTH_FAILED"),
        (
            429,
            {"status": "ERROR", "error": "You've exceeded the maximum requests per minute"},
            "INTEGRATION_RATE_LIMITED",
        ),
        (200, {"status": "OK", "resultsCount": 2, "request_id": "x"}, "INTEGRATION_BAD_RESPONSE"),
    ],
)
def test_polygon_failures_map_to_our_codes_record_the_error_and_leave_no_bar(
    polygon_server, tenant_a, owner_a, status, body, code
):
    instrument("BTC-USD", BTC_MAPPING)
    set_key(tenant_a, owner_a, "polygon", POLYGON_KEY, polygon_server)
    bot = running_bot(tenant_a, owner_a, source="polygon", symbols=["BTC-USD"])
    headers = {"Retry-After": "7"} if status == 429 else {}
    polygon_server.expect_request(re.compile("/v2/aggs/.*")).respond_with_json(body, status=status, headers=headers)

    [outcome] = refresh_bars(timeframe="1m", now=NOW)

    assert (outcome.status, outcome.error_code) == ("failed", code)
    assert stored("BTC-USD") == []
    events = usage(tenant_a, "polygon")
    assert [(e.status, e.error_code, e.bot_id) for e in events] == [("error", code, bot.id)]
    if status == 429:
        with tenancy.tenant_context(tenant_a.id), pytest.raises(IntegrationError) as caught:
            client_for("polygon").fetch_bars(ticker="X:BTCUSD", timeframe="1m", start=T0, end=NOW.replace(second=0))
        assert caught.value.retry_after == 7.0


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_a_bad_response(polygon_server, tenant_a, owner_a):
    set_key(tenant_a, owner_a, "polygon", POLYGON_KEY, polygon_server)
    polygon_server.expect_request(re.compile("/v2/aggs/.*")).respond_with_data("<html>oops</html>")
    with tenancy.tenant_context(tenant_a.id), pytest.raises(IntegrationError) as caught:
        client_for("polygon").fetch_bars(ticker="X:BTCUSD", timeframe="1m", start=T0, end=NOW.replace(second=0))
    assert caught.value.code == "INTEGRATION_BAD_RESPONSE"


# --- Databento ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_databento_ohlcv_is_fetched_with_the_official_client_and_ingested(databento_server, tenant_a, owner_a):
    instrument("ES", ES_MAPPING)
    set_key(tenant_a, owner_a, "databento", DATABENTO_KEY, databento_server)
    bot = running_bot(tenant_a, owner_a, source="databento", symbols=["ES"])
    databento_server.expect_oneshot_request("/v0/timeseries.get_range", method="POST").respond_with_data(
        dbn(
            [
                (ns(T0), "4500.25", "4501", "4499.75", "4500.5", 12),
                (ns(T0 + dt.timedelta(minutes=1)), "4500.5", "4502.25", "4500", "4502", 30),
            ]
        ),
        content_type="application/octet-stream",
    )

    [outcome] = refresh_bars(timeframe="1m", now=T0 + dt.timedelta(minutes=2, seconds=3))

    databento_server.check_assertions()
    assert (outcome.status, outcome.inserted) == ("ingested", 2), outcome
    [request] = [r for r, _ in databento_server.log if r.path == "/v0/timeseries.get_range"]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{DATABENTO_KEY}:".encode()).decode()
    form = request.form
    assert (form["dataset"], form["symbols"], form["schema"], form["stype_in"]) == (
        "GLBX.MDP3",
        "ES.c.0",
        "ohlcv-1m",
        "continuous",
    )
    start, end = (dt.datetime.fromisoformat(form[k]) for k in ("start", "end"))
    assert (start, end) == (T0 - dt.timedelta(minutes=8), T0 + dt.timedelta(minutes=2))  # 10-bar warm-up window
    bars = stored("ES")
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.source) for b in bars] == [
        (T0, Decimal("4500.25"), Decimal("4501"), Decimal("4499.75"), Decimal("4500.5"), Decimal(12), "databento"),
        (
            T0 + dt.timedelta(minutes=1),
            Decimal("4500.5"),
            Decimal("4502.25"),
            Decimal("4500"),
            Decimal("4502"),
            Decimal(30),
            "databento",
        ),
    ]
    [event] = usage(tenant_a, "databento")
    assert (event.operation, event.status, event.bot_id) == ("timeseries.get_range", "ok", bot.id)


@pytest.mark.django_db
def test_databento_5m_bars_are_built_from_its_1m_bars(databento_server, tenant_a, owner_a):
    instrument("ES", ES_MAPPING)
    set_key(tenant_a, owner_a, "databento", DATABENTO_KEY, databento_server)
    running_bot(tenant_a, owner_a, source="databento", symbols=["ES"], timeframe="5m")
    minute = dt.timedelta(minutes=1)
    databento_server.expect_oneshot_request("/v0/timeseries.get_range", method="POST").respond_with_data(
        dbn(
            [
                (ns(T0), "10", "12", "9", "11", 1),
                (ns(T0 + 2 * minute), "11", "15", "10", "14", 2),
                (ns(T0 + 4 * minute), "14", "14.5", "8", "9.25", 3),
            ]
        )
    )

    [outcome] = refresh_bars(timeframe="5m", now=T0 + 5 * minute)

    assert outcome.status == "ingested"
    assert databento_server.log[-1][0].form["schema"] == "ohlcv-1m"
    [bar] = stored("ES", "5m")
    assert (bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        T0,
        Decimal(10),
        Decimal(15),
        Decimal(8),
        Decimal("9.25"),
        Decimal(6),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, b'{"detail": "Authentication failed."}', "INTEGRATION_AUTH_FAILED"),
        (429, b'{"detail": "Too many requests."}', "INTEGRATION_RATE_LIMITED"),
        (200, b"this is not DBN", "INTEGRATION_BAD_RESPONSE"),
    ],
)
def test_databento_failures_map_to_our_codes_and_leave_no_bar(databento_server, tenant_a, owner_a, status, body, code):
    instrument("ES", ES_MAPPING)
    set_key(tenant_a, owner_a, "databento", DATABENTO_KEY, databento_server)
    bot = running_bot(tenant_a, owner_a, source="databento", symbols=["ES"])
    databento_server.expect_request("/v0/timeseries.get_range", method="POST").respond_with_response(
        Response(body, status=status, content_type="application/json" if status != 200 else "application/octet-stream")
    )

    [outcome] = refresh_bars(timeframe="1m", now=NOW)

    assert (outcome.status, outcome.error_code) == ("failed", code)
    assert stored("ES") == []
    assert [(e.status, e.error_code, e.bot_id) for e in usage(tenant_a, "databento")] == [("error", code, bot.id)]


# --- The beat task ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_beat_task_refreshes_only_running_bots_instruments(polygon_server, tenant_a, owner_a):
    instrument("BTC-USD", BTC_MAPPING)
    instrument("ETH-USD", {"polygon": {"ticker": "X:ETHUSD"}})
    set_key(tenant_a, owner_a, "polygon", POLYGON_KEY, polygon_server)
    bot = running_bot(tenant_a, owner_a, source="polygon", symbols=["BTC-USD"])
    running_bot(tenant_a, owner_a, source="polygon", symbols=["ETH-USD"], name="idle", start=False)
    running_bot(tenant_a, owner_a, source="imported", symbols=["ETH-USD"], name="on-files")
    closed = dt.datetime.now(UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    polygon_server.expect_request(re.compile("/v2/aggs/ticker/X:BTCUSD/range/1/minute/.*")).respond_with_json(
        aggs_body([agg(closed, 100, 101, 99, 100.5, 3)])
    )

    outcomes = tasks.refresh_market_data("1m")

    assert [(o["symbol"], o["status"], o["inserted"]) for o in outcomes] == [("BTC-USD", "ingested", 1)]
    assert [r.path.split("/")[4] for r, _ in polygon_server.log if r.path.startswith("/v2/")] == ["X:BTCUSD"]
    assert [b.ts for b in stored("BTC-USD")] == [closed] and stored("ETH-USD") == []
    assert [(e.operation, e.bot_id) for e in usage(tenant_a, "polygon")] == [("aggs.get_aggs", bot.id)]


@pytest.mark.django_db
def test_a_tenants_key_and_usage_event_stay_in_that_tenant(polygon_server, tenant_a, owner_a, tenant_b, owner_b):
    instrument("BTC-USD", BTC_MAPPING)
    set_key(tenant_a, owner_a, "polygon", POLYGON_KEY, polygon_server)
    running_bot(tenant_a, owner_a, source="polygon", symbols=["BTC-USD"])
    with tenancy.tenant_context(tenant_a.id):  # tenant A's key is gone after its bot started
        integration_services.credential_clear(provider="polygon", name="POLYGON_API_KEY", actor=owner_a)
    set_key(tenant_b, owner_b, "polygon", "pk-tenant-b-0987654321", polygon_server)
    bot_b = running_bot(tenant_b, owner_b, source="polygon", symbols=["BTC-USD"])
    polygon_server.expect_request(
        re.compile("/v2/aggs/.*"), headers={"Authorization": "Bearer pk-tenant-b-0987654321"}
    ).respond_with_json(aggs_body([agg(T0, 100, 101, 99, 100.5, 3)]))

    [outcome] = refresh_bars(timeframe="1m", now=NOW)

    assert (outcome.status, outcome.tenant_id) == ("ingested", tenant_b.id)
    assert usage(tenant_a, "polygon") == []
    assert [e.bot_id for e in usage(tenant_b, "polygon")] == [bot_b.id]


@pytest.mark.django_db
def test_an_unmapped_instrument_is_named_with_its_fix_and_makes_status_degraded(databento_server, tenant_a, owner_a):
    instrument("BTC-USD", {})
    set_key(tenant_a, owner_a, "databento", DATABENTO_KEY, databento_server)
    running_bot(tenant_a, owner_a, source="databento", symbols=["BTC-USD"])

    [outcome] = refresh_bars(timeframe="1m", now=NOW)

    assert (outcome.status, outcome.error_code) == ("unmapped", "DATA_UNAVAILABLE")
    assert "data_symbols['databento']" in outcome.message
    [problem] = [p for p in market_data_problems(tenant_a.id) if p["component"] == "market_data:BTC-USD:databento"]
    assert problem["code"] == "DATA_UNAVAILABLE" and "data_symbols" in problem["suggested_fix"]
    assert usage(tenant_a, "databento") == []


# --- Symbols and schedule -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reference_instruments_carry_their_certain_provider_symbols():
    # Committed-database tests empty every table, the seeded rows too: replay both seed migrations (each leaves rows
    # that exist as they are), so this checks what they write whatever ran before.
    editor = SimpleNamespace(connection=connection)
    for module, function in (("0002_seed_reference_instruments", "seed"), ("0010_seed_reference_data_symbols", "fill")):
        getattr(importlib.import_module(f"execution.migrations.{module}"), function)(django_apps, editor)
    symbols = dict(Instrument.objects.filter(symbol__in=["ES", "6E", "BTC-USD"]).values_list("symbol", "data_symbols"))
    assert symbols["ES"] == ES_MAPPING
    assert symbols["6E"]["databento"]["symbol"] == "6E.c.0"
    assert symbols["BTC-USD"] == BTC_MAPPING


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"bloomberg": {"ticker": "ES1"}},
        {"polygon": {}},
        {"polygon": {"ticker": " "}},
        {"databento": {"dataset": "GLBX.MDP3", "symbol": "ES.c.0", "stype_in": "parent"}},
        {"databento": {"dataset": "GLBX.MDP3", "symbol": "ES.c.0", "extra": 1}},
    ],
)
def test_malformed_provider_symbols_are_refused(value):
    with pytest.raises(ValidationError):
        validate_data_symbols(value)


def test_every_tick_timeframe_has_a_market_data_refresh_that_expires_before_its_tick(settings):
    for timeframe in settings.TICK_TIMEFRAMES:
        refresh, tick = (settings.CELERY_BEAT_SCHEDULE[f"{kind}-{timeframe}"] for kind in ("market-data", "ticks"))
        assert refresh["task"] == "execution.refresh_market_data" and refresh["args"] == [timeframe]
        assert refresh["schedule"] == tick["schedule"]
        assert 0 < refresh["options"]["expires"] <= max(settings.TICK_DELAY_SECONDS, 1)
