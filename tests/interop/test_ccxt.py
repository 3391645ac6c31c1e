"""ccxt (async, ccxt.pro's watch_trades) against the test exchange."""

from __future__ import annotations

from typing import Any

import pytest

from binprice.testing import TestExchange
from tests.interop.record import (
    RATE,
    STREAM_TRADES,
    SYMBOLS,
    assert_aggregates_tile_the_record,
    assert_trades_are_the_record,
    deadline,
)

ccxtpro = pytest.importorskip("ccxt.pro")

pytestmark = pytest.mark.interop
UNIFIED = {"BTCUSDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}


def client_for(ex: TestExchange, **config: Any) -> Any:
    """ccxt's binance with its spot REST and stream base URLs pointed at the exchange.

    Only spot markets are loaded: the futures exchangeInfo endpoints are not Spot's.
    """
    client = ccxtpro.binance({"options": {"fetchMarkets": {"types": ["spot"]}}, **config})
    client.urls["api"]["public"] = ex.rest_url + "/api/v3"
    client.urls["api"]["ws"]["spot"] = ex.ws_url + "/ws"
    return client


def trade_row(trade: dict[str, Any]) -> tuple[int, Any, Any, int, bool]:
    """The unified fields ccxt parsed, not its raw copy."""
    return (
        int(trade["id"]),
        trade["price"],
        trade["amount"],
        trade["timestamp"],
        (trade["side"] == "sell"),
    )


async def watch(client: Any, symbol: str, count: int, **params: Any) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    async with deadline():
        while len(seen) < count:
            for trade in await client.watch_trades(symbol, params=params):
                seen[trade["id"]] = trade
    return sorted(seen.values(), key=lambda t: int(t["id"]))


async def test_watch_trades_and_fetch_trades_are_the_record() -> None:
    """watch_trades (opens /ws/<n>, then SUBSCRIBEs) and fetch_trades on both REST methods."""
    async with TestExchange(SYMBOLS, seed=81, rate=RATE) as ex:
        client = client_for(ex)
        try:
            for symbol in SYMBOLS:
                trades = await watch(client, UNIFIED[symbol], STREAM_TRADES)
                assert_trades_are_the_record(ex, symbol, [trade_row(t) for t in trades])
                market = client.market(UNIFIED[symbol])  # built from exchangeInfo's filters
                assert (market["precision"]["price"], market["limits"]["price"]["max"]) == (
                    0.01,
                    1_000_000,
                )
                assert market["precision"]["amount"] == market["limits"]["amount"]["min"] > 0
                # historicalTrades would need an apiKey in ccxt (a stale check: Binance has not
                # asked for one since 2023), so the recent trades stand in for the trade shape.
                recent = await client.fetch_trades(
                    UNIFIED[symbol], params={"fetchTradesMethod": "publicGetTrades"}
                )
                assert_trades_are_the_record(ex, symbol, [trade_row(t) for t in recent])
                aggregated = await client.fetch_trades(UNIFIED[symbol], limit=1000)
                assert_aggregates_tile_the_record(
                    ex, symbol, [_agg_row(t["info"]) for t in aggregated]
                )
        finally:
            await client.close()


async def test_watch_agg_trades_are_the_record() -> None:
    """watch_trades(params={"name": "aggTrade"}) subscribes @aggTrade."""
    async with TestExchange(["BTCUSDT"], seed=82, rate=RATE) as ex:
        client = client_for(ex)
        try:
            trades = await watch(client, "BTC/USDT", STREAM_TRADES // 2, name="aggTrade")
            assert_aggregates_tile_the_record(ex, "BTCUSDT", [_agg_row(t["info"]) for t in trades])
        finally:
            await client.close()


async def test_over_tls() -> None:
    """wss:// and https:// with ccxt's cafile set to the exchange's certificate."""
    async with TestExchange(["BTCUSDT"], seed=83, rate=RATE, tls=True) as ex:
        assert ex.tls_files is not None
        client = client_for(ex, cafile=str(ex.tls_files.cert))
        try:
            trades = await watch(client, "BTC/USDT", STREAM_TRADES // 3)
            assert_trades_are_the_record(ex, "BTCUSDT", [trade_row(t) for t in trades])
        finally:
            await client.close()


def _agg_row(info: dict[str, Any]) -> tuple[int, str, str, int, int, int, bool]:
    return info["a"], info["p"], info["q"], info["f"], info["l"], info["T"], info["m"]
