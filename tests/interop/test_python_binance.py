"""python-binance (AsyncClient, BinanceSocketManager) against the test exchange."""

from __future__ import annotations

import warnings
from typing import Any

import aiohttp
import pytest

from binprice.testing import TestExchange
from binprice.testing.tls import client_context
from tests.interop.record import (
    RATE,
    STREAM_TRADES,
    SYMBOLS,
    Collector,
    assert_aggregates_tile_the_record,
    assert_trades_are_the_record,
    deadline,
)

# python-binance 1.0.x imports websockets' legacy client, which websockets >= 14 deprecates.
LEGACY_WEBSOCKETS = (
    "ignore:websockets.WebSocketClientProtocol is deprecated:DeprecationWarning",
    "ignore:websockets.legacy is deprecated:DeprecationWarning",
)
with warnings.catch_warnings():
    for spec in LEGACY_WEBSOCKETS:
        warnings.filterwarnings(*spec.split(":", 2)[:2], category=DeprecationWarning)
    binance = pytest.importorskip("binance")

pytestmark = [pytest.mark.interop, *(pytest.mark.filterwarnings(s) for s in LEGACY_WEBSOCKETS)]


async def client_for(ex: TestExchange, **kw: Any) -> Any:
    """AsyncClient.create() with only its base URL changed; create() pings and asks the time."""

    class Local(binance.AsyncClient):  # type: ignore[misc]
        API_URL = ex.rest_url + "/api"

    return await Local.create(**kw)


def sockets_for(ex: TestExchange, client: Any, **ws_kwargs: Any) -> Any:
    manager = binance.BinanceSocketManager(client)
    manager.STREAM_URL = ex.ws_url + "/"
    manager.ws_kwargs = ws_kwargs
    return manager


def trade_row(d: dict[str, Any]) -> tuple[int, str, str, int, bool]:
    return d["t"], d["p"], d["q"], d["T"], d["m"]


def rest_row(r: dict[str, Any]) -> tuple[int, str, str, int, bool]:
    return r["id"], r["price"], r["qty"], r["time"], r["isBuyerMaker"]


def agg_row(d: dict[str, Any]) -> tuple[int, str, str, int, int, int, bool]:
    return d["a"], d["p"], d["q"], d["f"], d["l"], d["T"], d["m"]


async def test_multiplex_trade_stream_and_rest_are_the_record() -> None:
    """Combined @trade stream (permessage-deflate via websockets), then REST pages."""
    async with TestExchange(SYMBOLS, seed=71, rate=RATE) as ex:
        client = await client_for(ex)
        try:
            collector = Collector([s.lower() + "@trade" for s in SYMBOLS])
            manager = sockets_for(ex, client)
            async with manager.multiplex_socket(list(collector.rows)) as socket, deadline():
                assert all(c.compressed for c in ex.connections)  # websockets offers deflate
                while not collector.done:
                    message = await socket.recv()
                    collector.add(message["stream"], trade_row(message["data"]))
            for symbol in SYMBOLS:
                rows = collector.rows[symbol.lower() + "@trade"]
                assert_trades_are_the_record(ex, symbol, rows)
                page = await client.get_historical_trades(symbol=symbol, fromId=rows[0][0])
                assert_trades_are_the_record(ex, symbol, [rest_row(r) for r in page])
                aggs = await client.get_aggregate_trades(symbol=symbol, limit=1000)
                assert_aggregates_tile_the_record(ex, symbol, [agg_row(a) for a in aggs])
                info = await client.get_symbol_info(symbol)
                assert info["status"] == "TRADING" and info["filters"][0]["minPrice"]
        finally:
            await client.close_connection()


async def test_raw_trade_and_agg_trade_sockets_are_the_record() -> None:
    """trade_socket (/ws/<s>@trade) and aggtrade_socket (/ws/<s>@aggTrade)."""
    async with TestExchange(["BTCUSDT"], seed=72, rate=RATE) as ex:
        client = await client_for(ex)
        try:
            manager = sockets_for(ex, client)
            trades, aggs = [], []
            async with manager.trade_socket("BTCUSDT") as socket, deadline():
                while len(trades) < STREAM_TRADES:
                    trades.append(trade_row(await socket.recv()))
            async with manager.aggtrade_socket("BTCUSDT") as socket, deadline():
                while len(aggs) < STREAM_TRADES // 2:
                    aggs.append(agg_row(await socket.recv()))
            assert_trades_are_the_record(ex, "BTCUSDT", trades)
            assert_aggregates_tile_the_record(ex, "BTCUSDT", aggs)
        finally:
            await client.close_connection()


async def test_over_tls() -> None:
    """wss:// and https:// with the exchange's self-signed certificate trusted."""
    async with TestExchange(["BTCUSDT"], seed=73, rate=RATE, tls=True) as ex:
        assert ex.tls_files is not None
        ssl = client_context(ex.tls_files.cert)
        client = await client_for(ex, session_params={"connector": aiohttp.TCPConnector(ssl=ssl)})
        try:
            trades = []
            async with sockets_for(ex, client, ssl=ssl).trade_socket("BTCUSDT") as s, deadline():
                while len(trades) < STREAM_TRADES // 3:
                    trades.append(trade_row(await s.recv()))
            assert_trades_are_the_record(ex, "BTCUSDT", trades)
            assert (await client.get_server_time())["serverTime"] > 0
        finally:
            await client.close_connection()
