"""The API's body parsers: JSON, form and multipart, each refusing text that Postgres cannot store.

A JSON string may spell NUL (``"\\u0000"``) or a lone surrogate (``"\\ud800"``): Python decodes both, but
Postgres refuses NUL in text and jsonb, and a lone surrogate cannot even be encoded to UTF-8, so a body such as
``{"kind": "RECONCILE", "params": {"x": "\\u0000"}}`` reached the database and answered 500. DRF's CharField
refuses NUL at the top level only; a JSONField or DictField takes anything. The check lives in the parsers, so
every string of every body (values and keys, however deep) passes it before any view or serializer sees it, and
no view can forget it: a 400 ``VALIDATION_ERROR`` whose ``details`` name each offending path (``params.x``,
``legs.0.symbol``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ValidationError

# json.loads joins an escaped surrogate pair into one character: any surrogate left in a str is a lone one.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "Text must not contain NUL (\\u0000) or a lone surrogate (\\ud800-\\udfff)."


def _segment(key: str) -> str:
    """A path segment that can itself be rendered: an unstorable key is named by its JSON escape."""
    return json.dumps(key)[1:-1] if _UNSTORABLE.search(key) else key


def unstorable_paths(value: Any, path: str = "") -> list[str]:
    """The dotted paths of every string (or mapping key) in ``value`` holding NUL or a lone surrogate."""
    found = []
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            found.append(path)
    elif isinstance(value, QueryDict):  # a form: its keys are already paths (DRF reads "params.x" as nested)
        for key, values in value.lists():
            if _UNSTORABLE.search(key) or any(_UNSTORABLE.search(item) for item in values if isinstance(item, str)):
                found.append(_segment(key))
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{_segment(key)}" if path else _segment(key)
            if _UNSTORABLE.search(key):
                found.append(child)
            found += unstorable_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += unstorable_paths(item, f"{path}.{index}" if path else str(index))
    return found


def refuse_unstorable_text(data: Any) -> Any:
    paths = unstorable_paths(data)
    if paths:
        raise ValidationError({path or "body": [MESSAGE] for path in paths})
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return refuse_unstorable_text(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return refuse_unstorable_text(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        refuse_unstorable_text(result.data)
        return result
