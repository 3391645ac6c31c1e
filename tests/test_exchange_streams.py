"""Stream connections of the test exchange as Binance's clients open and use them."""

from __future__ import annotations

import itertools
import json
import zlib
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from binprice.exchange.protocol import ControlResponse, ErrorFrame, WireTrade
from binprice.testing import TestExchange
from binprice.testing.frames import Deflater
from tests.test_exchange import CHATTY, contiguous, frames, trades_of
from tests.test_exchange import session as session  # the fixture

UUID = "7d3b9b46-5f4f-4f8e-9c3a-2b1d7e6f5a40"


async def texts(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[Any]:
    """The next ``count`` text frames as JSON."""
    return await frames(ws, count, json.loads)


@pytest.mark.parametrize(
    "path",
    [
        "/ws/0",
        "/ws",
        "/ws/",
        "/stream",
        "/stream?streams=",
        "/ws/!ticker@arr",
        "/stream?streams=!miniTicker@arr/nopeusdt@trade",
        "/ws/BTCUSDT@trade",
    ],
)
async def test_any_stream_path_is_accepted_and_filled_by_subscribe(
    session: aiohttp.ClientSession, path: str
) -> None:
    """Like Binance, the handshake never refuses a stream list; SUBSCRIBE fills it later."""
    async with (
        TestExchange(["BTCUSDT"], seed=31, rate=500, limits=CHATTY) as ex,
        session.ws_connect(ex.ws_url + path) as ws,
    ):
        await ws.send_str(f'{{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":"{UUID}"}}')
        items = await frames(ws, 4)
        assert items[0] == ControlResponse(UUID, None)
        assert len(trades_of(items[1:], "BTCUSDT")) == 3


async def test_unknown_streams_are_listed_but_silent(session: aiohttp.ClientSession) -> None:
    """Well-formed streams the exchange has no data for are subscribed and stay silent."""
    path = "/stream?streams=!ticker@arr/nopeusdt@trade/btcusdt@depth@100ms/btcusdt@trade"
    async with (
        TestExchange(["BTCUSDT"], seed=32, max_trades=20) as ex,
        session.ws_connect(ex.ws_url + path) as ws,
    ):
        items = await frames(ws, 20)
        assert trades_of(items) == ex.produced("BTCUSDT")
        await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":null}')
        [listed] = await frames(ws, 1)
        assert listed == ControlResponse(
            None, ["!ticker@arr", "nopeusdt@trade", "btcusdt@depth@100ms", "btcusdt@trade"]
        )


@pytest.mark.parametrize(
    ("request_id", "echoed"),
    [(UUID, UUID), (-5, -5), (2**63 - 1, 2**63 - 1), (None, None), ("a" * 37, None)],
    ids=["uuid", "negative", "max-int64", "null", "too-long"],
)
async def test_errors_echo_the_request_id(
    session: aiohttp.ClientSession, request_id: Any, echoed: Any
) -> None:
    """A refused request's reply carries its id (null only when the id itself was bad)."""
    request = json.dumps({"method": "GET_PROPERTY", "params": ["colour"], "id": request_id})
    async with TestExchange(seed=33) as ex, session.ws_connect(ex.ws_url + "/ws") as ws:
        await ws.send_str(request)
        [reply] = await frames(ws, 1)
        assert isinstance(reply, ErrorFrame) and reply.id == echoed
        assert reply.code == (2 if echoed is None and request_id is not None else 0)


async def test_property_errors_have_the_documented_texts(
    session: aiohttp.ClientSession,
) -> None:
    """SET/GET_PROPERTY refusals: codes 0, 1, 2 with web-socket-streams.md's messages."""
    cases = [
        ('["colour"]', 0, "Unknown property"),
        ('["combined","yes"]', 1, "Invalid value type: expected Boolean"),
        ("[5]", 2, "Invalid request: property name must be a string"),
        ('["combined",true,1]', 2, "Invalid request: too many parameters"),
    ]
    async with (
        TestExchange(seed=34, limits=CHATTY) as ex,
        session.ws_connect(ex.ws_url + "/stream") as ws,
    ):
        for i, (params, _, _) in enumerate(cases):
            await ws.send_str(f'{{"method":"SET_PROPERTY","params":{params},"id":{i}}}')
        replies = await texts(ws, len(cases))
        assert replies == [
            {"error": {"code": code, "msg": msg}, "id": i} for i, (_, code, msg) in enumerate(cases)
        ]


async def test_agg_trade_stream_aggregates_the_trades_of_the_record(
    session: aiohttp.ClientSession,
) -> None:
    """@aggTrade frames tile the @trade ids: own ids +1, f..l ranges, summed quantity."""
    path = "/stream?streams=btcusdt@trade/btcusdt@aggTrade"
    async with (
        TestExchange(["BTCUSDT"], seed=35, max_trades=300) as ex,
        session.ws_connect(ex.ws_url + path) as ws,
    ):
        await ex.wait_produced("BTCUSDT", 300)
        produced = ex.produced("BTCUSDT")
        received = await texts(ws, 1)
        while received[-1]["data"].get("l") != produced[-1].trade_id:  # the last aggregate
            received += await texts(ws, 1)
        aggs = [r["data"] for r in received if r["stream"] == "btcusdt@aggTrade"]
        by_id = {t.trade_id: t for t in produced}
        assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
        assert [i for a in aggs for i in range(a["f"], a["l"] + 1)] == list(by_id)
        for agg in aggs:
            mine = [by_id[i] for i in range(agg["f"], agg["l"] + 1)]
            assert sum(t.quantity for t in mine) == Decimal(agg["q"])
            assert {(t.price, t.time_ms, t.is_buyer_maker) for t in mine} == {
                (Decimal(agg["p"]), agg["T"], agg["m"])
            }
        # Each aggregate follows its last trade on the connection (sent once it is complete).
        order = [r["data"].get("t", r["data"].get("l")) for r in received]
        assert order.index(aggs[0]["l"]) < len(order) - order[::-1].index(aggs[0]["l"]) - 1


async def test_agg_trade_only_subscriber_gets_data_at_full_speed(
    session: aiohttp.ClientSession,
) -> None:
    """A connection subscribed only to @aggTrade creates demand at full speed too."""
    async with (
        TestExchange(["BTCUSDT"], seed=36) as ex,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@aggTrade") as ws,
    ):
        aggs = await texts(ws, 50)
        assert all(a["e"] == "aggTrade" for a in aggs)
        assert [a["f"] for a in aggs[1:]] == [a["l"] + 1 for a in aggs[:-1]]


async def test_symbols_interleave_by_trade_time(session: aiohttp.ClientSession) -> None:
    """One connection gets both symbols mixed in trade-time order, not symbol blocks."""
    async with (
        TestExchange(seed=37, max_trades=400) as ex,
        session.ws_connect(ex.ws_url + "/stream?streams=btcusdt@trade/ethusdt@trade") as ws,
    ):
        got = trades_of(await frames(ws, 800))
        switches = sum(a.symbol != b.symbol for a, b in itertools.pairwise(got))
        assert switches > 100
        for symbol in ("BTCUSDT", "ETHUSDT"):
            assert contiguous(trades_of(got, symbol)) and trades_of(got, symbol) == ex.produced(
                symbol
            )


async def test_microsecond_frames_carry_real_microseconds(session: aiohttp.ClientSession) -> None:
    """timeUnit=MICROSECOND: T is the recorded µs time, not the ms one times 1000."""
    async with (
        TestExchange(["BTCUSDT"], seed=38, rate=2000) as ex,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@trade?timeUnit=microsecond") as ws,
    ):
        raw = await texts(ws, 200)
        generator = ex.generators["BTCUSDT"]
        assert [r["T"] for r in raw] == [
            generator.time_us(r["t"] - generator.first_id) for r in raw
        ]
        assert any(r["T"] % 1000 for r in raw) and all(r["E"] >= r["T"] for r in raw)


async def test_permessage_deflate_is_negotiated_when_offered(
    session: aiohttp.ClientSession,
) -> None:
    """A client offering permessage-deflate gets compressed frames; one not offering, plain."""
    path = "/stream?streams=btcusdt@trade/ethusdt@trade"
    async with TestExchange(seed=39, max_trades=200, limits=CHATTY) as ex:
        async with session.ws_connect(ex.ws_url + path, compress=15) as ws:
            assert ws.compress == 15
            got = await frames(ws, 400)
            await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            assert await frames(ws, 1) == [ControlResponse(1, ["btcusdt@trade", "ethusdt@trade"])]
        assert trades_of(got, "BTCUSDT") == ex.produced("BTCUSDT")
        async with session.ws_connect(ex.ws_url + "/ws/btcusdt@trade") as plain:
            assert plain.compress == 0


@pytest.mark.parametrize("takeover", [True, False], ids=["context-takeover", "no-takeover"])
def test_deflater_frames_decompress_as_rfc_7692_says(takeover: bool) -> None:
    """Compressed frames have RSV1 set and inflate with the tail re-appended (RFC 7692 7.2.2)."""
    deflater = Deflater(15, context_takeover=takeover)
    messages = [b'{"e":"trade","t":%d,"p":"73109.30000000"}' % i for i in range(20)]
    inflater = zlib.decompressobj(-15)
    for message in messages:
        frame = deflater.frame(message)
        assert frame[0] == 0xC1 and frame[1] == len(frame) - 2  # FIN+RSV1+text, short length
        if not takeover:
            inflater = zlib.decompressobj(-15)  # each message must stand alone
        assert inflater.decompress(frame[2:] + b"\x00\x00\xff\xff") == message


async def test_binprice_decoder_reads_every_form(session: aiohttp.ClientSession) -> None:
    """Raw, combined, µs and compressed frames all decode to the same recorded trades."""
    forms = [
        ("/ws/btcusdt@trade", 0),
        ("/stream?streams=btcusdt@trade&timeUnit=MICROSECOND", 0),
        ("/stream?streams=btcusdt@trade", 15),
    ]
    async with TestExchange(["BTCUSDT"], seed=40, max_trades=60) as ex:
        for path, compress in forms:
            async with session.ws_connect(ex.ws_url + path, compress=compress) as ws:
                got = [t for t in await frames(ws, 60) if isinstance(t, WireTrade)]
                assert got == ex.produced("BTCUSDT")[-60:]
            ex.max_trades = (ex.max_trades or 0) + 60
