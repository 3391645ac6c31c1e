"""The test exchange as a USD-M or COIN-M market, read by binprice's REST client and decoders."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from binprice.errors import ExchangeError
from binprice.exchange.protocol import (
    NonMarketTrade,
    WireAggTrade,
    WireTrade,
    decode_agg_frame,
    decode_futures_frame,
)
from binprice.exchange.rest import RestClient
from binprice.markets import Market
from binprice.testing import Faults, TestExchange

KEY = "k3yWithLettersAndDigits0123456789"
COUNT = 600


async def filled(market: Market, symbols: list[str]) -> TestExchange:
    """An exchange of `market` whose symbols traded COUNT trades, then went quiet."""
    ex = TestExchange(symbols, seed=19, max_trades=COUNT, market=market)
    await ex.start()
    streams = "/".join(f"{s.lower()}@trade" for s in symbols)
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(f"{ex.ws_url}/stream?streams={streams}") as ws,
    ):
        for symbol in symbols:
            await ex.wait_produced(symbol, COUNT)
        await ws.close()
    return ex


@pytest.fixture
async def usdm() -> AsyncIterator[TestExchange]:
    ex = await filled(Market.USDM, ["BTCUSDT", "BTCUSDT_250328"])
    try:
        yield ex
    finally:
        await ex.stop()


@pytest.fixture
async def coinm() -> AsyncIterator[TestExchange]:
    ex = await filled(Market.COINM, ["BTCUSD_PERP"])
    try:
        yield ex
    finally:
        await ex.stop()


async def test_usdm_history_needs_a_key_and_serves_every_trade_with_one(
    usdm: TestExchange,
) -> None:
    """Without X-MBX-APIKEY the exchange refuses (-2014) and the error says what to do; with
    one, pages of 500 walk every produced trade, and the key reached the exchange."""
    produced = usdm.produced("BTCUSDT")
    async with aiohttp.ClientSession() as session:
        anonymous = RestClient(session, usdm.rest_url, market=Market.USDM)
        with pytest.raises(ExchangeError, match=r"needs an API key.*BINPRICE_API_KEY"):
            await anonymous.historical_trades("BTCUSDT", produced[0].trade_id, attempts=1)
        keyed = RestClient(session, usdm.rest_url, market=Market.USDM, api_key=KEY)
        pages = [
            await keyed.historical_trades("BTCUSDT", produced[0].trade_id, attempts=1),
            await keyed.historical_trades("BTCUSDT", produced[500].trade_id, attempts=1),
        ]
    assert [len(p) for p in pages] == [500, COUNT - 500]
    assert pages[0] + pages[1] == produced
    assert usdm.rest.keys_seen == {KEY: 2}
    assert KEY not in repr(keyed) and "api_key=set" in repr(keyed)


async def test_a_key_the_exchange_does_not_know_is_refused(usdm: TestExchange) -> None:
    """-2015 (a key of the right form, not accepted) gives the same hint."""
    usdm.rest.api_keys = frozenset({"another"})
    async with aiohttp.ClientSession() as session:
        keyed = RestClient(session, usdm.rest_url, market=Market.USDM, api_key=KEY)
        with pytest.raises(ExchangeError, match="needs an API key"):
            await keyed.historical_trades("BTCUSDT", usdm.produced("BTCUSDT")[0].trade_id, 1)


async def test_usdm_aggregates_by_id_and_time_tile_the_trades(usdm: TestExchange) -> None:
    """aggTrades from an id and from a time give the generator's aggregates, whose f..l ranges
    cover the produced trade ids exactly, with the summed quantity."""
    generator = usdm.generators["BTCUSDT"]
    expected = [generator.agg(k) for k in range(len(generator.aggregates))]
    async with aiohttp.ClientSession() as session:
        rest = RestClient(session, usdm.rest_url, market=Market.USDM)
        by_id = await rest.agg_trades("BTCUSDT", from_id=expected[0].agg_id)
        by_time = await rest.agg_trades("BTCUSDT", start_ms=expected[3].time_ms)
        with pytest.raises(ExchangeError, match="1 hours"):
            await rest.agg_trades("BTCUSDT", start_ms=0, end_ms=2 * 3_600_000)
    assert by_id == expected
    assert by_time[0].time_ms == expected[3].time_ms and by_time[-1] == expected[-1]
    produced = usdm.produced("BTCUSDT")
    covered = [i for a in by_id for i in range(a.first_trade_id, a.last_trade_id + 1)]
    assert covered == [t.trade_id for t in produced]
    by_trade = {t.trade_id: t for t in produced}
    for aggregate in by_id:
        members = [
            by_trade[i] for i in range(aggregate.first_trade_id, aggregate.last_trade_id + 1)
        ]
        assert sum(t.quantity for t in members) == aggregate.quantity
        assert {t.price for t in members} == {aggregate.price}


async def test_usdm_listing_has_the_perpetual_and_the_quarterly(usdm: TestExchange) -> None:
    """/fapi/v1/exchangeInfo: contract types, the delivery date the name implies, 2400 weight."""
    async with aiohttp.ClientSession() as session:
        rest = RestClient(session, usdm.rest_url, market=Market.USDM)
        infos = await rest.validate_symbols(("BTCUSDT", "BTCUSDT_250328"))
        trading = await rest.trading_symbols(("USDT",))
    assert infos["BTCUSDT"].is_perpetual
    assert (infos["BTCUSDT_250328"].contract_type, infos["BTCUSDT_250328"].delivery_ms) == (
        "CURRENT_QUARTER",
        1743148800000,
    )
    assert trading == ["BTCUSDT", "BTCUSDT_250328"]
    assert rest.weight_limit == 2400
    assert usdm.rest.requests["/fapi/v1/exchangeInfo"] == 2


async def test_usdm_streams_carry_futures_frames_and_aggregates(usdm: TestExchange) -> None:
    """Frames have X and no M; binprice's futures decoder reads them back as produced."""
    generator = usdm.generators["BTCUSDT"]
    frame = generator.payload(0)
    assert b'"X":"MARKET"' in frame and b'"M"' not in frame
    assert decode_futures_frame(frame) == usdm.produced("BTCUSDT")[0]
    aggregate = decode_agg_frame(generator.agg_payload(1))
    assert aggregate == generator.agg(1)
    assert b'"M"' not in generator.agg_payload(1)


async def test_coinm_rows_count_contracts_and_give_base_quantity(coinm: TestExchange) -> None:
    """/dapi/v1: quantities are whole contracts, rows carry baseQty = contracts x 100 / price."""
    produced = coinm.produced("BTCUSD_PERP")
    generator = coinm.generators["BTCUSD_PERP"]
    async with aiohttp.ClientSession() as session:
        rest = RestClient(session, coinm.rest_url, market=Market.COINM, api_key=KEY)
        page = await rest.historical_trades("BTCUSD_PERP", produced[0].trade_id, attempts=1)
        async with session.get(
            coinm.rest_url + "/dapi/v1/trades", params={"symbol": "BTCUSD_PERP", "limit": "1"}
        ) as resp:
            row = (await resp.json())[0]
        infos = await rest.validate_symbols(("BTCUSD_PERP",))
    assert page == produced[:500]
    assert all(t.quantity == t.quantity.to_integral_value() for t in page)
    last = produced[-1]
    assert row["id"] == last.trade_id and "quoteQty" not in row
    assert row["baseQty"] == f"{generator.base_quantity(len(produced) - 1):f}"
    assert infos["BTCUSD_PERP"].is_perpetual


def test_a_futures_series_is_another_market_than_its_spot_pair() -> None:
    """Same seed and name, different market: other ids, other prices (never confused)."""
    spot = TestExchange(["BTCUSDT"], seed=19).generators["BTCUSDT"]
    futures = TestExchange(["BTCUSDT"], seed=19, market=Market.USDM).generators["BTCUSDT"]
    spot.produce(50, 10**15)
    futures.produce(50, 10**15)
    assert spot.first_id != futures.first_id
    assert [t.price for t in spot.trades()] != [t.price for t in futures.trades()]
    assert all(isinstance(t, WireTrade) for t in futures.trades())
    assert isinstance(futures.agg(0), WireAggTrade)


async def test_non_market_trades_reach_the_stream_only() -> None:
    """Insurance-fund trades arrive with their X and their ids; REST and aggTrades never carry
    them, so market trades plus non-market ids make the whole id line."""
    faults = Faults(non_market_next=3, non_market_kind="ADL")
    usdm = TestExchange(["BTCUSDT"], seed=4, max_trades=200, faults=faults, market=Market.USDM)
    async with (
        usdm as ex,
        aiohttp.ClientSession() as session,
        session.ws_connect(ex.ws_url + "/stream?streams=btcusdt@trade") as ws,
    ):
        events = [decode_futures_frame((await ws.receive()).data) for _ in range(200)]
        rest = RestClient(session, ex.rest_url, market=Market.USDM, api_key=KEY)
        first = ex.generators["BTCUSDT"].first_id
        served = await rest.historical_trades("BTCUSDT", first, attempts=1)
        served += await rest.historical_trades("BTCUSDT", served[-1].trade_id + 1, 1)
        first_agg = ex.generators["BTCUSDT"].aggregates.first_id
        aggregates = await rest.agg_trades("BTCUSDT", from_id=first_agg)
    odd = [e for e in events if isinstance(e, NonMarketTrade)]
    assert [(e.kind, e.trade_id) for e in odd] == [("ADL", first + i) for i in range(3)]
    trades = [e for e in events if isinstance(e, WireTrade)]
    assert {t.trade_id for t in trades} | {e.trade_id for e in odd} == set(
        range(first, first + 200)
    )
    assert served == trades
    aggregated = {i for a in aggregates for i in range(a.first_trade_id, a.last_trade_id + 1)}
    assert aggregated.isdisjoint(e.trade_id for e in odd)
    assert ex.never_served("BTCUSDT") == {e.trade_id for e in odd}
