"""REST of the test exchange as Binance clients call it: ping, time, exchangeInfo, aggTrades."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from binprice.exchange.protocol import decode_rest_trades, parse_exchange_info
from binprice.testing import TestExchange
from tests.test_exchange import session as session  # the fixture

MICRO = {"X-MBX-TIME-UNIT": "MICROSECOND"}


@pytest.fixture
async def exchange() -> AsyncIterator[TestExchange]:
    """Two symbols with 2000 trades each, then quiet."""
    async with TestExchange(seed=51, max_trades=2000) as ex:
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(ex.ws_url + "/stream?streams=btcusdt@trade/ethusdt@trade") as ws,
        ):
            for symbol in ("BTCUSDT", "ETHUSDT"):
                await ex.wait_produced(symbol, 2000)
            await ws.close()
        yield ex


async def get(session: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, Any, Any]:
    async with session.get(url, **kw) as r:
        return r.status, await r.json(), r.headers


async def test_ping_and_time_answer_with_weight_one(
    session: aiohttp.ClientSession, exchange: TestExchange
) -> None:
    """/api/v3/ping is {}, /api/v3/time a ms (or, asked, µs) epoch; both weigh 1."""
    status, body, headers = await get(session, exchange.rest_url + "/api/v3/ping")
    assert (status, body) == (200, {})
    assert headers["X-MBX-USED-WEIGHT-1M"] == headers["X-MBX-USED-WEIGHT"] == "1"
    _, body, headers = await get(session, exchange.rest_url + "/api/v3/time")
    assert len(str(body["serverTime"])) == 13 and headers["X-MBX-USED-WEIGHT-1M"] == "2"
    _, body, _ = await get(session, exchange.rest_url + "/api/v3/time", headers=MICRO)
    assert len(str(body["serverTime"])) == 16


async def test_exchange_info_is_complete(
    session: aiohttp.ClientSession, exchange: TestExchange
) -> None:
    """All rate limiters, filters with min/max, precisions, permissions and order types."""
    _, info, _ = await get(session, exchange.rest_url + "/api/v3/exchangeInfo?symbol=BTCUSDT")
    assert {(r["rateLimitType"], r["interval"]) for r in info["rateLimits"]} == {
        ("REQUEST_WEIGHT", "MINUTE"),
        ("ORDERS", "SECOND"),
        ("ORDERS", "DAY"),
        ("RAW_REQUESTS", "MINUTE"),
    }
    [entry] = info["symbols"]
    filters = {f["filterType"]: f for f in entry["filters"]}
    assert filters["PRICE_FILTER"] == {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    }
    assert filters["LOT_SIZE"]["minQty"] == filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert Decimal(filters["NOTIONAL"]["minNotional"]) > 0
    assert {"MARKET_LOT_SIZE", "ICEBERG_PARTS", "MAX_NUM_ORDERS"} <= set(filters)
    assert entry["baseAsset"] == "BTC" and entry["quoteAsset"] == "USDT"
    assert entry["baseAssetPrecision"] == entry["quoteAssetPrecision"] == 8
    assert "MARKET" in entry["orderTypes"] and entry["permissionSets"] == [["SPOT", "MARGIN"]]
    # Every price and quantity the market made respects the filters it announces.
    for trade in exchange.produced("BTCUSDT"):
        assert Decimal(filters["PRICE_FILTER"]["minPrice"]) <= trade.price
        assert trade.price <= Decimal(filters["PRICE_FILTER"]["maxPrice"])
        assert Decimal(filters["LOT_SIZE"]["minQty"]) <= trade.quantity
        assert trade.quantity <= Decimal(filters["LOT_SIZE"]["maxQty"])


@pytest.mark.parametrize(
    ("query", "symbols", "code"),
    [
        ("", ["BTCUSDT", "ETHUSDT"], None),
        ("?symbolStatus=TRADING", ["BTCUSDT"], None),
        ("?symbolStatus=BREAK", ["ETHUSDT"], None),
        ("?permissions=SPOT", ["BTCUSDT", "ETHUSDT"], None),
        ('?permissions=["LEVERAGED"]', [], None),
        ("?symbolStatus=SLEEPING", None, -1122),
        ("?symbolStatus=TRADING&symbol=BTCUSDT", None, -1128),
        ('?symbols=["BTCUSDT","nope"]', None, -1100),
    ],
    ids=["all", "trading", "break", "spot", "leveraged", "bad-status", "status-and-symbol",
         "lowercase"],
)  # fmt: skip
async def test_exchange_info_filters(
    session: aiohttp.ClientSession,
    exchange: TestExchange,
    query: str,
    symbols: list[str] | None,
    code: int | None,
) -> None:
    """symbolStatus, permissions and symbols select entries; bad combinations are refused."""
    exchange.statuses["ETHUSDT"] = "BREAK"
    status, body, headers = await get(session, exchange.rest_url + "/api/v3/exchangeInfo" + query)
    assert headers["X-MBX-USED-WEIGHT-1M"] == "20"
    if code is None:
        assert status == 200 and [s["symbol"] for s in body["symbols"]] == symbols
        assert set(parse_exchange_info(json.dumps(body))) == set(symbols or [])
    else:
        assert (status, body["code"]) == (400, code)


async def test_show_permission_sets_false_empties_them(
    session: aiohttp.ClientSession, exchange: TestExchange
) -> None:
    url = exchange.rest_url + "/api/v3/exchangeInfo?showPermissionSets=false"
    _, body, _ = await get(session, url)
    assert all(s["permissionSets"] == [] for s in body["symbols"])


async def agg(
    session: aiohttp.ClientSession, ex: TestExchange, headers: Any = None, **params: Any
) -> Any:
    status, body, headers = await get(
        session,
        ex.rest_url + "/api/v3/aggTrades",
        params={"symbol": "BTCUSDT", **{k: str(v) for k, v in params.items()}},
        headers=headers,
    )
    assert status == 200, body
    assert headers["X-MBX-USED-WEIGHT"] == headers["X-MBX-USED-WEIGHT-1M"]
    return body


async def test_agg_trades_newest_and_from_id(
    session: aiohttp.ClientSession, exchange: TestExchange
) -> None:
    """limit=1 is the newest aggregate, its l the newest trade id; fromId is an aggregate id."""
    produced = exchange.produced("BTCUSDT")
    [newest] = await agg(session, exchange, limit=1)
    assert newest["l"] == produced[-1].trade_id
    page = await agg(session, exchange, fromId=newest["a"] - 9)
    assert [r["a"] for r in page] == list(range(newest["a"] - 9, newest["a"] + 1))
    assert page[-1] == newest
    everything = await agg(session, exchange, fromId=newest["a"] - 3000, limit=1000)
    assert everything[0]["f"] == produced[0].trade_id  # fromId before the first: the first
    recent = await agg(session, exchange)  # default limit 500
    assert len(recent) == 500 and recent[-1] == newest


async def test_agg_trades_by_time_window(
    session: aiohttp.ClientSession, exchange: TestExchange
) -> None:
    """startTime/endTime are inclusive, in ms or µs; endTime alone gives the newest before it."""
    produced = exchange.produced("BTCUSDT")
    middle = produced[1000].time_ms
    after = await agg(session, exchange, startTime=middle, limit=1000)
    assert after[0]["T"] >= middle and after[0]["f"] <= produced[1000].trade_id
    assert all(t.time_ms < middle for t in produced if t.trade_id < after[0]["f"])
    before = await agg(session, exchange, endTime=middle, limit=5)
    assert len(before) == 5 and before[-1]["T"] == middle and before[-1]["l"] >= after[0]["f"]
    window = await agg(session, exchange, startTime=middle, endTime=middle)
    assert window and {r["T"] for r in window} == {middle}
    covered = [i for r in window for i in range(r["f"], r["l"] + 1)]
    assert covered == [t.trade_id for t in produced if t.time_ms == middle]
    generator = exchange.generators["BTCUSDT"]
    micro = await agg(session, exchange, startTime=generator.time_us(1000), limit=1, headers=MICRO)
    assert micro[0]["T"] == generator.time_us(1000) and micro[0]["f"] <= produced[1000].trade_id
    status, body, _ = await get(
        session, exchange.rest_url + f"/api/v3/aggTrades?symbol=BTCUSDT&fromId=1&endTime={middle}"
    )
    assert (status, body["code"]) == (400, -1128)


async def test_trade_pages_in_microseconds(
    session: aiohttp.ClientSession, exchange: TestExchange
) -> None:
    """X-MBX-TIME-UNIT: MICROSECOND gives µs times that floor to the recorded ms ones."""
    url = exchange.rest_url + "/api/v3/historicalTrades?symbol=ETHUSDT&limit=1000"
    _, rows, _ = await get(session, url, headers=MICRO)
    generator = exchange.generators["ETHUSDT"]
    assert [r["time"] for r in rows] == [
        generator.time_us(r["id"] - generator.first_id) for r in rows
    ]
    assert decode_rest_trades("ETHUSDT", json.dumps(rows)) == exchange.produced("ETHUSDT")[-1000:]
