"""Twilio's side in its documented shapes (the Account and Message resources, the error body), for tests that run
our client and the official ``twilio`` SDK against a pytest-httpserver instance passed in. Production never
imports it."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

if TYPE_CHECKING:  # werkzeug comes with pytest-httpserver, a test requirement
    from werkzeug import Request, Response

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "tw-abcdefghijkl"
FROM_NUMBER = "+15005550006"
CREDENTIALS = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": FROM_NUMBER}

_sids = itertools.count(1)


def messages_path(sid: str = ACCOUNT_SID) -> str:
    return f"/2010-04-01/Accounts/{sid}/Messages.json"


def serve_account(server, *, sid: str = ACCOUNT_SID, status: str = "active") -> None:
    """``GET /2010-04-01/Accounts/{Sid}.json``, what verify reads."""
    server.expect_request(f"/2010-04-01/Accounts/{sid}.json", method="GET").respond_with_json(
        {"sid": sid, "friendly_name": "ops", "status": status, "type": "Full", "owner_account_sid": sid}
    )


def message_created(request: Request) -> Response:
    """Twilio's 201 for ``POST .../Messages.json``: the Message resource, queued, echoing To, From and Body."""
    form = {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
    sid = f"SM{next(_sids):032x}"
    account = request.path.split("/")[3]
    body = {
        "sid": sid,
        "account_sid": account,
        "to": form.get("To"),
        "from": form.get("From"),
        "body": form.get("Body"),
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "price": None,
        "error_code": None,
        "error_message": None,
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
    }
    return _json(body, 201)


def error(status: int, code: int, message: str) -> Response:
    """Twilio's documented error body."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return _json(body, status)


def serve_messages(server, *, sid: str = ACCOUNT_SID) -> None:
    """Every ``POST .../Messages.json`` is accepted (queued)."""
    server.expect_request(messages_path(sid), method="POST").respond_with_handler(message_created)


def sent_messages(server, *, sid: str = ACCOUNT_SID) -> list[dict[str, str]]:
    """The form bodies (To, From, Body) of the messages the server was asked to send."""
    return [
        {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
        for request, _ in server.log
        if request.path == messages_path(sid) and request.method == "POST"
    ]


def _json(body: dict, status: int) -> Response:
    from werkzeug import Response

    return Response(json.dumps(body), status=status, content_type="application/json")
