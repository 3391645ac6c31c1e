"""Table tests of the pure protocol code against every line of the Binance fixtures."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from binprice.errors import ExchangeError
from binprice.exchange import protocol as binance
from binprice.exchange.protocol import (
    ControlResponse,
    ErrorFrame,
    Malformed,
    OtherEvent,
    ServerShutdown,
    WireTrade,
    decode_frame,
    decode_rest_trades,
)

FIXTURES = Path(__file__).parent / "fixtures" / "binance"


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


COMBINED = _lines("trade_combined.jsonl")
RAW = _lines("trade_raw.jsonl")
MICRO = _lines("trade_microsecond.jsonl")
VARIANTS = _lines("trade_variants.jsonl")
ERRORS = [json.loads(line) for line in _lines("errors.jsonl")]
WS_ERRORS = [e for e in ERRORS if e["channel"] == "ws"]


def _trade(frame: str | bytes) -> WireTrade:
    result = decode_frame(frame)
    assert isinstance(result, WireTrade), result
    return result


@pytest.mark.parametrize("line", COMBINED, ids=[f"combined-{i + 1}" for i in range(len(COMBINED))])
def test_combined_frame_decodes_to_the_trade_it_carries(line: str) -> None:
    """Each combined fixture frame decodes field by field, from str and from bytes."""
    data = json.loads(line)["data"]
    trade = _trade(line)
    assert trade == _trade(line.encode())
    assert trade.symbol == data["s"]
    assert trade.trade_id == data["t"]
    assert str(trade.price) == data["p"]
    assert str(trade.quantity) == data["q"]
    assert trade.time_ms == data["T"]
    assert trade.is_buyer_maker is data["m"]


def test_combined_fixture_matches_the_readme_table() -> None:
    """Counts, latest, high, low and summed quantity per symbol equal the README table."""
    by_symbol: dict[str, list[WireTrade]] = defaultdict(list)
    for line in COMBINED:
        trade = _trade(line)
        by_symbol[trade.symbol].append(trade)
    expected: dict[str, dict[str, Any]] = {
        "BTCUSDT": dict(n=40, latest=("73112.31000000", 6329162650, 1779941622823),
                        high="73112.31000000", low=("73109.23000000", 6329162620), q="0.49065000"),
        "ETHUSDT": dict(n=30, latest=("1979.82000000", 4049338735, 1779941623040),
                        high="1979.94000000", low=("1979.82000000", 4049338720), q="12.19600000"),
    }  # fmt: skip
    assert set(by_symbol) == set(expected)
    for symbol, want in expected.items():
        trades = by_symbol[symbol]
        ids = [t.trade_id for t in trades]
        assert len(trades) == want["n"]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        latest = max(trades, key=lambda t: t.trade_id)
        assert (str(latest.price), latest.trade_id, latest.time_ms) == want["latest"]
        assert str(max(t.price for t in trades)) == want["high"]
        low = min(trades, key=lambda t: (t.price, t.trade_id))
        assert (str(low.price), low.trade_id) == want["low"]
        assert str(sum((t.quantity for t in trades), Decimal(0))) == want["q"]
        assert all(a.time_ms <= b.time_ms for a, b in itertools.pairwise(trades))


@pytest.mark.parametrize("index", range(len(RAW)), ids=[f"raw-{i + 1}" for i in range(len(RAW))])
def test_raw_frame_equals_the_combined_frame_of_the_same_trade(index: int) -> None:
    """A raw /ws frame carries the same trade as the first BTCUSDT combined frames."""
    btc = [line for line in COMBINED if '"btcusdt@trade"' in line]
    assert _trade(RAW[index]) == _trade(btc[index])


@pytest.mark.parametrize(
    "index", range(len(MICRO)), ids=[f"micro-{i + 1}" for i in range(len(MICRO))]
)
def test_microsecond_frame_floors_to_the_millisecond_trade(index: int) -> None:
    """timeUnit=MICROSECOND frames decode to the same trade as the ms frames."""
    assert _trade(MICRO[index]) == _trade(COMBINED[index])


@pytest.mark.parametrize(
    ("index", "accepted"),
    [(0, True), (1, True), (2, False), (3, False)],
    ids=["spot-2021-with-b-a", "spot-2021-second-fill", "futures-market", "futures-insurance"],
)
def test_variant_frames_old_spot_accepted_futures_refused(index: int, accepted: bool) -> None:
    """Old Spot frames (extra b/a) decode; futures look-alikes (X, no M) are refused."""
    result = decode_frame(VARIANTS[index])
    if accepted:
        assert isinstance(result, WireTrade)
        assert result.trade_id == json.loads(VARIANTS[index])["data"]["t"]
    else:
        assert result == OtherEvent("futures_trade", json.loads(VARIANTS[index])["stream"])


_KIND_BY_PREFIX: dict[str, type] = {
    "subscribe_ok": ControlResponse,
    "unsubscribe_ok": ControlResponse,
    "list_subscriptions": ControlResponse,
    "ack_": ControlResponse,
    "set_property": ControlResponse,
    "get_property": ControlResponse,
    "err_": ErrorFrame,
    "server_shutdown": ServerShutdown,
    "non_trade": OtherEvent,
    "malformed": Malformed,
    "trade_": Malformed,
}


def _expected_kind(case: str) -> type:
    return next(kind for prefix, kind in _KIND_BY_PREFIX.items() if case.startswith(prefix))


@pytest.mark.parametrize("entry", WS_ERRORS, ids=[e["case"] for e in WS_ERRORS])
def test_ws_error_fixture_is_classified_per_its_expectation(entry: dict[str, Any]) -> None:
    """Every errors.jsonl ws line becomes the event its case and expect describe."""
    result = decode_frame(entry["raw"])
    assert isinstance(result, _expected_kind(entry["case"])), result
    raw = entry["raw"]
    parsed = json.loads(raw) if isinstance(result, ControlResponse | ErrorFrame) else None
    if isinstance(result, ControlResponse):
        assert parsed is not None
        assert (result.id, result.result) == (parsed["id"], parsed["result"])
    if isinstance(result, ErrorFrame):
        assert parsed is not None
        inner = parsed.get("error", parsed)
        assert (result.code, result.msg, result.id) == (
            inner["code"],
            inner["msg"],
            parsed.get("id"),
        )
    if isinstance(result, ServerShutdown):
        assert result.event_time_ms == 1779941621592


def test_rest_page_matches_the_streamed_trades_it_overlaps() -> None:
    """historicalTrades rows decode to trades equal to the same ids seen on the stream."""
    rest = decode_rest_trades("btcusdt", (FIXTURES / "rest_trades.json").read_bytes())
    assert [t.trade_id for t in rest] == list(range(6329162621, 6329162641))
    streamed = {t.trade_id: t for t in map(_trade, COMBINED) if t.symbol == "BTCUSDT"}
    assert all(streamed[t.trade_id] == t for t in rest)


@pytest.mark.parametrize(
    "body",
    [
        b'{"code":-1121,"msg":"Invalid symbol."}',
        b'[{"id":1,"price":1.5}]',
        b"nope",
        b'[{"id":1,"price":"0","qty":"1","time":1,"isBuyerMaker":true}]',
    ],
    ids=["error-object", "numeric-price", "not-json", "zero-price"],
)
def test_rest_page_that_is_not_a_trade_list_raises_exchange_error(body: bytes) -> None:
    """A bad REST page raises ExchangeError naming the symbol, never a raw decode error."""
    with pytest.raises(ExchangeError, match=r"BTCUSDT|trade"):
        decode_rest_trades("BTCUSDT", body)


def test_smallest_decimal_survives_unchanged() -> None:
    """0.00000001 is kept exactly, with its 8 digits."""
    frame = COMBINED[0].replace('"q":"0.00205000"', '"q":"0.00000001"')
    quantity = _trade(frame).quantity
    assert quantity == Decimal("0.00000001")
    assert format(quantity, "f") == "0.00000001"
    assert quantity.as_tuple().exponent == -8


@pytest.mark.parametrize(
    "price",
    ['"NaN"', '"Infinity"', '"-1.00000000"', '"abc"', "null"],
    ids=["nan", "infinity", "negative", "garbage", "null"],
)
def test_non_positive_or_non_numeric_price_is_malformed(price: str) -> None:
    """Prices that are not finite positive decimal strings are refused."""
    frame = COMBINED[0].replace('"p":"73109.30000000"', f'"p":{price}')
    assert isinstance(decode_frame(frame), Malformed)


def test_stream_helpers() -> None:
    """Stream names are lowercase and connections respect the 1024-stream limit."""
    assert binance.stream_name("BTCUSDT") == "btcusdt@trade"
    path = binance.combined_stream_path(["BTCUSDT", "ETHUSDT"])
    assert path == "/stream?streams=btcusdt@trade/ethusdt@trade"
    symbols = [f"S{i}USDT" for i in range(2049)]
    chunks = binance.split_into_connections(symbols)
    assert [len(c) for c in chunks] == [1024, 1024, 1]
    assert [s for chunk in chunks for s in chunk] == symbols
    assert binance.control_request("SUBSCRIBE", ["btcusdt@trade"], 7) == (
        b'{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":7}'
    )


def test_exchange_info_gives_status_and_filters() -> None:
    """exchangeInfo entries map to SymbolInfo with status, tick and step."""
    body = json.dumps(
        {
            "symbols": [
                {
                    "symbol": "BTCUSDT",
                    "status": "TRADING",
                    "baseAsset": "BTC",
                    "quoteAsset": "USDT",
                    "filters": [
                        {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                        {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
                    ],
                },
                {"symbol": "ETHUSDT", "status": "BREAK", "filters": []},
            ]
        }
    )
    info = binance.parse_exchange_info(body)
    assert info["BTCUSDT"].is_trading and info["BTCUSDT"].tick_size == Decimal("0.01")
    assert info["BTCUSDT"].step_size == Decimal("0.00001")
    assert not info["ETHUSDT"].is_trading
    with pytest.raises(ExchangeError):
        binance.parse_exchange_info(b'{"code":-1121,"msg":"Invalid symbol."}')


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"symbols": "BTCUSDT"}',
        b'{"symbols": [["BTCUSDT"]]}',
        b'{"symbols": [{"symbol": "BTCUSDT", "status": "TRADING", "filters": ["x"]}]}',
        b'{"symbols": [{"symbol": "BTCUSDT", "status": "TRADING",'
        b' "filters": [{"filterType": "PRICE_FILTER", "tickSize": "abc"}]}]}',
        b"<html>not an API</html>",
    ],
    ids=["array", "symbols-string", "entry-list", "filter-string", "bad-decimal", "html"],
)
def test_exchange_info_of_an_unexpected_shape_is_one_exchange_error(body: bytes) -> None:
    """Whatever an exchangeInfo answer looks like, a wrong one is an ExchangeError in one line
    that says to check the REST URL, never another exception."""
    with pytest.raises(ExchangeError, match="is the REST URL a Binance API") as caught:
        binance.parse_exchange_info(body)
    assert "\n" not in str(caught.value)


def test_weight_limit_is_read_from_exchange_info_rate_limits() -> None:
    from binprice.exchange.protocol import parse_weight_limit

    limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 10, "limit": 9},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
    ]
    assert parse_weight_limit(json.dumps({"rateLimits": limits, "symbols": []})) == 1200
    assert parse_weight_limit(b'{"symbols": []}') is None
    assert parse_weight_limit(b"<html>") is None
