"""Control requests of the test exchange's streams, parsed as Binance parses them (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from binprice.testing.control import (
    STREAM_NAME,
    ControlError,
    Request,
    parse_request,
    valid_id,
)

UUID = "7d3b9b46-5f4f-4f8e-9c3a-2b1d7e6f5a40"
METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"


@pytest.mark.parametrize(
    "value",
    [1, 0, -(2**63), 2**63 - 1, UUID, "abc7", "", "a" * 36, None],
    ids=["one", "zero", "min-int64", "max-int64", "uuid", "alnum", "empty", "36-chars", "null"],
)
def test_request_ids_binance_accepts(value: Any) -> None:
    """64-bit signed integers, strings of up to 36 characters (UUIDs too) and null."""
    assert valid_id(value)


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, "a" * 37, "has space", 1.5, True, [1], {"a": 1}],
    ids=["over-int64", "under-int64", "37-chars", "space", "float", "bool", "list", "object"],
)
def test_request_ids_binance_refuses(value: Any) -> None:
    assert not valid_id(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}',
         Request("SUBSCRIBE", ["btcusdt@trade"], 1)),
        (f'{{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":"{UUID}"}}',
         Request("SUBSCRIBE", ["btcusdt@aggTrade"], UUID)),
        ('{"method":"LIST_SUBSCRIPTIONS","id":null}', Request("LIST_SUBSCRIPTIONS", [], None)),
        ('{"id":3,"method":"GET_PROPERTY","params":["combined"]}',
         Request("GET_PROPERTY", ["combined"], 3)),
    ],
    ids=["subscribe", "uuid-id", "null-id", "id-first"],
)  # fmt: skip
def test_well_formed_requests_parse(text: str, expected: Request) -> None:
    assert parse_request(text) == expected


@pytest.mark.parametrize(
    ("text", "code", "msg", "request_id"),
    [
        ("not json", 3, "Invalid JSON: expected value at line 1 column 1", None),
        ('{"method":', 3, "Invalid JSON: EOF while parsing a value at line 1 column 10", None),
        ('{"method":"LIST_SUBSCRIPTIONS","id":1}x', 3,
         "Invalid JSON: trailing characters at line 1 column 39", None),
        ('{"method":"SUBSCRIBED","params":[],"id":7}', 2,
         f"Invalid request: unknown variant `SUBSCRIBED`, expected one of {METHODS} "
         "at line 1 column 22", 7),
        ('{"params":[],"id":"x1"}', 2,
         "Invalid request: missing field `method` at line 1 column 23", "x1"),
        ('{"method":"LIST_SUBSCRIPTIONS"}', 2,
         "Invalid request: request ID must be an unsigned integer", None),
        ('{"method":"LIST_SUBSCRIPTIONS","id":1.5}', 2,
         "Invalid request: request ID must be an unsigned integer", None),
        (f'{{"method":"LIST_SUBSCRIPTIONS","id":"{UUID}x"}}', 2,
         "Invalid request: request ID must be an unsigned integer", None),
    ],
    ids=["not-json", "truncated", "trailing", "unknown-method", "no-method", "no-id",
         "float-id", "37-char-id"],
)  # fmt: skip
def test_bad_requests_get_binances_code_text_and_the_request_id(
    text: str, code: int, msg: str, request_id: Any
) -> None:
    """The documented codes and texts; the id is echoed whenever it was a valid one."""
    with pytest.raises(ControlError) as refused:
        parse_request(text)
    assert refused.value.reply() == {"error": {"code": code, "msg": msg}, "id": request_id}


@pytest.mark.parametrize(
    "name",
    [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@depth@100ms",
        "btcusdt@kline_1m@+08:00",
        "!ticker@arr",
        "!miniTicker@arr",
        "!bookTicker",
        "!ticker_1h@arr",
        "币安usdt@trade",
    ],
)
def test_stream_names_binance_knows_the_shape_of(name: str) -> None:
    assert STREAM_NAME.match(name)


@pytest.mark.parametrize("name", ["BTCUSDT@trade", "btcusdt", "0", "", "btc usdt@trade", "@trade"])
def test_malformed_stream_names(name: str) -> None:
    assert not STREAM_NAME.match(name)
