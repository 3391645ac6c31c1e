"""Binance's own binance-sdk-spot (WebSocket streams, REST) against the test exchange."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from binprice.testing import TestExchange
from tests.interop.record import (
    RATE,
    SYMBOLS,
    Collector,
    assert_aggregates_tile_the_record,
    assert_trades_are_the_record,
)

spot = pytest.importorskip("binance_sdk_spot.spot")

pytestmark = pytest.mark.interop


def client_for(ex: TestExchange) -> Any:
    """Spot with its REST base path and stream URL pointed at the exchange."""
    return spot.Spot(
        config_rest_api=spot.ConfigurationRestAPI(base_path=ex.rest_url),
        config_ws_streams=spot.ConfigurationWebSocketStreams(stream_url=ex.ws_url),
    )


def trade_row(t: Any) -> tuple[int, str, str, int, bool]:
    return t.t, t.p, t.q, t.T, t.m


def agg_row(a: Any) -> tuple[int, str, str, int, int, int, bool]:
    return a.a, a.p, a.q, a.f, a.l, a.T, a.m


async def rest(call: Any, **params: Any) -> Any:
    """The SDK's REST client is synchronous (requests): run it off the event loop."""
    return (await asyncio.to_thread(call, **params)).data()


async def test_streams_subscribed_with_uuid_ids_are_the_record() -> None:
    """trade/agg_trade SUBSCRIBE with UUID ids, LIST_SUBSCRIPTIONS, then REST pages."""
    async with TestExchange(SYMBOLS, seed=91, rate=RATE) as ex:
        client = client_for(ex)
        collector = Collector(["BTCUSDT@trade", "ETHUSDT@trade", "BTCUSDT@aggTrade"])
        connection = await client.websocket_streams.create_connection()
        try:
            for symbol in SYMBOLS:
                stream = await connection.trade(symbol=symbol.lower())
                stream.on("message", lambda t: collector.add(t.s + "@trade", trade_row(t)))
            aggs = await connection.agg_trade(symbol="btcusdt")
            aggs.on("message", lambda a: collector.add(a.s + "@aggTrade", agg_row(a)))
            listed = (await connection.list_subscribe())["result"]
            assert sorted(listed) == ["btcusdt@aggTrade", "btcusdt@trade", "ethusdt@trade"]
            await collector.wait()
        finally:
            await connection.close_connection(close_session=True)
        for symbol in SYMBOLS:
            rows = collector.rows[symbol + "@trade"]
            assert_trades_are_the_record(ex, symbol, rows)
            page = await rest(client.rest_api.historical_trades, symbol=symbol, from_id=rows[0][0])
            assert_trades_are_the_record(
                ex, symbol, [(r.id, r.price, r.qty, r.time, r.is_buyer_maker) for r in page]
            )
        assert_aggregates_tile_the_record(ex, "BTCUSDT", collector.rows["BTCUSDT@aggTrade"])
        recent = await rest(client.rest_api.agg_trades, symbol="BTCUSDT", limit=1000)
        assert_aggregates_tile_the_record(ex, "BTCUSDT", [agg_row(a) for a in recent])


async def test_rest_ping_time_and_exchange_info_parse() -> None:
    """ping, time and exchangeInfo validate against the SDK's pydantic models."""
    async with TestExchange(SYMBOLS, seed=92) as ex:
        client = client_for(ex)
        assert (await rest(client.rest_api.ping)) is not None
        assert (await rest(client.rest_api.time)).server_time > 0
        info = await rest(client.rest_api.exchange_info, symbols=list(SYMBOLS))
        assert [s.symbol for s in info.symbols] == list(SYMBOLS)
        price_filter = info.symbols[0].filters[0].actual_instance
        assert (price_filter.min_price, price_filter.tick_size) == ("0.01000000", "0.01000000")
        assert {limit.rate_limit_type for limit in info.rate_limits} == {
            "REQUEST_WEIGHT",
            "ORDERS",
            "RAW_REQUESTS",
        }
