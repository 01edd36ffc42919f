"""Databento's side in its documented shapes (dataset list, DBN OHLCV answers), for tests that run our client and
the official ``databento`` client against a pytest-httpserver instance passed in. Production never imports it."""

from __future__ import annotations

from decimal import Decimal

import databento_dbn


def serve_verify(server) -> None:
    """``GET /v0/metadata.list_datasets``, what verify reads."""
    server.expect_request("/v0/metadata.list_datasets").respond_with_json(["GLBX.MDP3"])


def dbn(records, schema=databento_dbn.Schema.OHLCV_1M, rtype=databento_dbn.RType.OHLCV_1M):
    """Databento's answer: DBN metadata then OHLCV records, prices fixed-point 1e-9."""
    metadata = databento_dbn.Metadata(
        dataset="GLBX.MDP3",
        start=records[0][0],
        stype_in=databento_dbn.SType.CONTINUOUS,
        stype_out=databento_dbn.SType.INSTRUMENT_ID,
        schema=schema,
        symbols=["ES.c.0"],
    )
    scale = 1_000_000_000
    return bytes(metadata) + b"".join(
        bytes(
            databento_dbn.OHLCVMsg(
                int(rtype),
                1,
                4242,
                ts,
                int(Decimal(o) * scale),
                int(Decimal(h) * scale),
                int(Decimal(l) * scale),
                int(Decimal(c) * scale),
                volume,
            )
        )
        for ts, o, h, l, c, volume in records
    )


def ns(at):
    return int(at.timestamp()) * 1_000_000_000
