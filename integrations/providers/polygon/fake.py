"""Polygon's side in its documented shapes (reference tickers, aggregates), for tests that run our client and the
official ``massive`` client against a pytest-httpserver instance passed in. Production never imports it."""

from __future__ import annotations


def serve_verify(server) -> None:
    """``GET /v3/reference/tickers?limit=1``, what verify reads."""
    server.expect_request("/v3/reference/tickers").respond_with_json(
        {"status": "OK", "results": [{"ticker": "X:BTCUSD"}], "request_id": "v"}
    )


def ms(at):
    return int(at.timestamp() * 1000)


def agg(at, o, h, l, c, v):
    return {"v": v, "vw": c, "o": o, "c": c, "h": h, "l": l, "t": ms(at), "n": 3}


def aggs_body(results):
    return {
        "ticker": "X:BTCUSD",
        "queryCount": len(results),
        "resultsCount": len(results),
        "adjusted": True,
        "results": results,
        "status": "OK",
        "request_id": "r1",
        "count": len(results),
    }
