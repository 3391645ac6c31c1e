"""Live control messages of a stream connection: parsing and Binance's error texts.

Pure code: :func:`parse_request` turns one text frame into a :class:`Request` or raises
:class:`ControlError` carrying the code, message and request id Binance would answer with (the
documented texts of web-socket-streams.md "Error Messages", positions as its JSON parser gives
them). The connection turns either into a reply frame.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import msgspec

#: Stream names as Binance accepts them in SUBSCRIBE: a lowercase symbol (non-ASCII since
#: 2025-12) and a channel (``btcusdt@trade``, ``btcusdt@depth@100ms``,
#: ``btcusdt@kline_1m@+08:00``), or an all-market stream (``!ticker@arr``, ``!bookTicker``).
_SYMBOL = r"[^\sA-Z@/!\"]{1,40}"
_CHANNEL = r"[A-Za-z0-9_@+:.-]{1,40}"
STREAM_NAME = re.compile(rf"^(?:{_SYMBOL}@{_CHANNEL}|![A-Za-z0-9_]{{1,30}}(?:@{_CHANNEL})?)$")
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
PROPERTIES = ("combined",)
#: Request ids Binance accepts: a signed 64-bit integer, a string of up to 36 characters
#: (the docs say alphanumeric; UUIDs with hyphens, what binance-sdk-spot sends, work), null.
_STRING_ID = re.compile(r"^[A-Za-z0-9_-]{0,36}$")
_INT64 = 2**63

# Error codes of web-socket-streams.md.
UNKNOWN_PROPERTY = 0
BAD_VALUE_TYPE = 1
INVALID_REQUEST = 2
INVALID_JSON = 3

BAD_ID = "Invalid request: request ID must be an unsigned integer"
INVALID_STREAM = "Invalid request: invalid stream"
TOO_MANY_PARAMETERS = "Invalid request: too many parameters"
PROPERTY_NAME = "Invalid request: property name must be a string"

# What Python's json says → what Binance's parser says, for the Invalid JSON message.
_JSON_MESSAGES = {
    "Expecting value": "expected value",
    "Extra data": "trailing characters",
    "Expecting property name enclosed in double quotes": "key must be a string",
    "Expecting ',' delimiter": "expected `,` or `}`",
    "Expecting ':' delimiter": "expected `:`",
    "Invalid control character at": (
        "control character (\\u0000-\\u001F) found while parsing a string"
    ),
}
_METHOD_VALUE = re.compile(r'"method"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\s]+)')


class ControlError(Exception):
    """A request Binance refuses: the reply is ``{"error":{"code","msg"},"id"}``."""

    def __init__(self, code: int, msg: str, request_id: Any = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.request_id = code, msg, request_id

    def reply(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "msg": self.msg}, "id": self.request_id}


@dataclass(frozen=True, slots=True)
class Request:
    """A well-formed control request; ``params`` is a list (empty when absent)."""

    method: str
    params: list[Any]
    id: Any


def valid_id(value: Any) -> bool:
    """Whether Binance accepts ``value`` as a request id."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    return value is None or (isinstance(value, str) and bool(_STRING_ID.match(value)))


def parse_request(text: str | bytes) -> Request:
    """Validate one control frame; raise :class:`ControlError` with Binance's answer."""
    source = text.decode(errors="replace") if isinstance(text, bytes) else text
    try:
        request = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise ControlError(INVALID_JSON, "Invalid JSON: " + _json_error(source)) from None
    if not isinstance(request, dict):
        kind = "sequence" if isinstance(request, list) else type(request).__name__
        raise ControlError(
            INVALID_REQUEST,
            f"Invalid request: invalid type: {kind}, expected "
            f"struct Request at line 1 column {len(source)}",
        )
    if "id" not in request or not valid_id(request["id"]):
        raise ControlError(INVALID_REQUEST, BAD_ID)
    request_id = request["id"]
    method = request.get("method")
    if method is None:
        raise ControlError(
            INVALID_REQUEST,
            f"Invalid request: missing field `method` at {_position(source, len(source))}",
            request_id,
        )
    if method not in METHODS:
        raise ControlError(INVALID_REQUEST, _unknown_method(source, method), request_id)
    params = request.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise ControlError(
            INVALID_REQUEST, "Invalid request: invalid type: expected a sequence", request_id
        )
    return Request(method, params, request_id)


def _position(source: str, index: int) -> str:
    """``line L column C`` of 0-based ``index``, 1-based like Binance's parser."""
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1)
    return f"line {line} column {column}"


def _unknown_method(source: str, method: Any) -> str:
    found = _METHOD_VALUE.search(source)
    where = _position(source, found.end(1)) if found else _position(source, len(source))
    expected = ", ".join(f"`{m}`" for m in METHODS)
    shown = method if isinstance(method, str) else json.dumps(method)
    return f"Invalid request: unknown variant `{shown}`, expected one of {expected} at {where}"


def _json_error(source: str) -> str:
    try:
        json.loads(source)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(source.rstrip()):
            return f"EOF while parsing a value at {_position(source, len(source))}"
        message = _JSON_MESSAGES.get(exc.msg, "expected value")
        return f"{message} at {_position(source, exc.pos + 1)}"
    return "expected value at line 1 column 1"  # json accepts what msgspec does not (NaN)
