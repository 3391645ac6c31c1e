"""The test exchange against a real aiohttp client, decoding with binprice.exchange.protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from binprice.errors import UsageError
from binprice.exchange.protocol import (
    ControlResponse,
    ErrorFrame,
    ServerShutdown,
    WireTrade,
    decode_frame,
    decode_rest_trades,
    parse_exchange_info,
)
from binprice.testing import (
    ConnectionLimits,
    ExchangeProcess,
    Faults,
    TestExchange,
)
from binprice.testing.cli import ExchangeOptions, build_exchange
from binprice.testing.timeline import HISTORY_TRADES_PER_DAY, day_offset

BOTH = "/stream?streams=btcusdt@trade/ethusdt@trade"
CHATTY = ConnectionLimits(max_incoming_per_second=100)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def frames(
    ws: aiohttp.ClientWebSocketResponse,
    count: int,
    decode: Callable[[str], Any] = decode_frame,
) -> list[Any]:
    """Decode the next ``count`` text frames (2 s budget)."""
    out = []
    async with asyncio.timeout(2):
        while len(out) < count:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            out.append(decode(msg.data))
    return out


async def until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """Decode everything up to the close; return it (close code on ``ws.close_code``)."""
    out = []
    async with asyncio.timeout(3):
        async for msg in ws:
            out.append(decode_frame(msg.data))
    return out


def trades_of(items: list[Any], symbol: str | None = None) -> list[WireTrade]:
    return [t for t in items if isinstance(t, WireTrade) and symbol in (None, t.symbol)]


def contiguous(trades: list[WireTrade]) -> bool:
    return all(b.trade_id == a.trade_id + 1 for a, b in itertools.pairwise(trades))


async def test_combined_stream_delivers_the_produced_record_contiguously(
    session: aiohttp.ClientSession,
) -> None:
    """Combined frames decode to exactly the produced trades, ids contiguous per symbol."""
    async with (
        TestExchange(seed=1, max_trades=300) as ex,
        session.ws_connect(ex.ws_url + BOTH) as ws,
    ):
        got = trades_of(await frames(ws, 600))
        for symbol in ("BTCUSDT", "ETHUSDT"):
            mine = trades_of(got, symbol)
            assert mine == ex.produced(symbol)
            assert contiguous(mine) and len(mine) == 300
            assert all(a.time_ms <= b.time_ms for a, b in itertools.pairwise(mine))
        # The fixture market's ids, continued to today at the history's pace (timeline.py).
        # (A day either side: the test may straddle midnight.)
        today, day = datetime.now(UTC).date(), timedelta(days=1)
        first = ex.produced("BTCUSDT")[0].trade_id
        assert 6329162611 + day_offset(today - day, HISTORY_TRADES_PER_DAY) <= first
        assert first < 6329162611 + day_offset(today + 2 * day, HISTORY_TRADES_PER_DAY)


async def test_raw_stream_sends_bare_payloads(session: aiohttp.ClientSession) -> None:
    """/ws/<stream> frames have no wrapper and carry E >= T."""
    async with (
        TestExchange(["BTCUSDT"], seed=2, max_trades=50) as ex,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@trade") as ws,
    ):
        raw = [json.loads((await ws.receive()).data) for _ in range(50)]
        assert all("stream" not in r and r["E"] >= r["T"] for r in raw)
        assert [decode_frame(json.dumps(r)) for r in raw] == ex.produced("BTCUSDT")


async def test_microsecond_time_unit_floors_to_the_record(session: aiohttp.ClientSession) -> None:
    """timeUnit=MICROSECOND frames carry 16-digit E/T that decode to the recorded trades."""
    async with (
        TestExchange(["BTCUSDT"], seed=21, max_trades=40) as ex,
        session.ws_connect(ex.ws_url + "/stream?streams=btcusdt@trade&timeUnit=MICROSECOND") as ws,
    ):
        texts = [(await ws.receive()).data for _ in range(40)]
        assert all(len(str(json.loads(t)["data"]["T"])) == 16 for t in texts)
        assert [decode_frame(t) for t in texts] == ex.produced("BTCUSDT")


async def test_subscribe_list_unsubscribe_and_properties(session: aiohttp.ClientSession) -> None:
    """An empty /stream fills via SUBSCRIBE; LIST, GET/SET_PROPERTY answer like Binance."""
    async with (
        TestExchange(seed=3, rate=200, limits=CHATTY) as ex,
        session.ws_connect(ex.ws_url + "/stream") as ws,
    ):
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}')
        assert (await frames(ws, 1)) == [ControlResponse(1, None)]
        assert trades_of(await frames(ws, 3), "BTCUSDT")
        await ws.send_str('{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":"abc7"}')
        await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":3}')
        await ws.send_str('{"method":"GET_PROPERTY","params":["combined"],"id":4}')
        await ws.send_str('{"method":"SET_PROPERTY","params":["combined",false],"id":5}')
        await ws.send_str('{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":6}')
        replies: list[Any] = []
        raw_after: list[dict[str, Any]] = []
        async with asyncio.timeout(2):
            while len(raw_after) < 5:
                msg = (await ws.receive()).data
                item = decode_frame(msg)
                if isinstance(item, ControlResponse):
                    replies.append(item)
                elif len(replies) == 5:
                    raw_after.append(json.loads(msg))
        assert replies == [
            ControlResponse("abc7", None),
            ControlResponse(3, ["btcusdt@trade", "ethusdt@trade"]),
            ControlResponse(4, True),
            ControlResponse(5, None),
            ControlResponse(6, None),
        ]
        assert all(r["s"] == "ETHUSDT" and "stream" not in r for r in raw_after)


@pytest.mark.parametrize(
    ("request_text", "code", "request_id"),
    [
        ("not json", 3, None),
        ('{"method":"SUBSCRIBED","params":[],"id":7}', 2, 7),
        ('{"method":"SUBSCRIBE","params":["BTCUSDT"],"id":8}', 2, 8),
        ('{"method":"GET_PROPERTY","params":["colour"],"id":9}', 0, 9),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":10}', 1, 10),
        ('{"method":"LIST_SUBSCRIPTIONS","id":1.5}', 2, None),
    ],
    ids=[
        "invalid-json",
        "unknown-method",
        "invalid-stream",
        "unknown-property",
        "bad-type",
        "bad-id",
    ],
)
async def test_bad_requests_get_nested_errors(
    session: aiohttp.ClientSession, request_text: str, code: int, request_id: int | None
) -> None:
    """Rejections arrive as {"error":{"code","msg"},"id"} with Binance's codes."""
    async with TestExchange(seed=4) as ex, session.ws_connect(ex.ws_url + "/stream") as ws:
        await ws.send_str(request_text)
        [reply] = await frames(ws, 1)
        assert isinstance(reply, ErrorFrame)
        assert (reply.code, reply.id) == (code, request_id)


async def test_invalid_stream_is_followed_by_a_close(session: aiohttp.ClientSession) -> None:
    """As observed on Binance, rejecting an invalid stream ends the connection shortly after."""
    limits = ConnectionLimits(invalid_stream_close_delay=0.05)
    async with (
        TestExchange(seed=22, limits=limits) as ex,
        session.ws_connect(ex.ws_url + "/stream") as ws,
    ):
        await ws.send_str('{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":1}')
        assert [type(i) for i in await until_closed(ws)] == [ErrorFrame]
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_too_many_messages_per_second_closes_1008(session: aiohttp.ClientSession) -> None:
    """The sixth control message within a second closes the connection with 1008."""
    async with TestExchange(seed=5) as ex, session.ws_connect(ex.ws_url + "/stream") as ws:
        for i in range(6):
            await ws.send_str(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        replies = await until_closed(ws)
        assert len(replies) == 5
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_more_than_1024_streams_closes_1008(session: aiohttp.ClientSession) -> None:
    """Subscribing a 1025th stream on one connection closes it with 1008."""
    streams = [f"sym{i}usdt@trade" for i in range(1025)]
    request = json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1})
    async with TestExchange(seed=6) as ex, session.ws_connect(ex.ws_url + "/stream") as ws:
        await ws.send_str(request)
        assert await until_closed(ws) == []
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_pings_arrive_and_silence_closes_the_connection(
    session: aiohttp.ClientSession,
) -> None:
    """Server pings every interval; an answering client stays, a mute one is closed."""
    # Pings 4/s: a client answering each stays under the 5 incoming messages/s limit.
    limits = ConnectionLimits(ping_interval=0.25, pong_timeout=0.4)
    async with TestExchange(seed=7, limits=limits) as ex:
        async with session.ws_connect(ex.ws_url + "/stream", autoping=False) as mute:
            async with asyncio.timeout(2):
                assert (await mute.receive()).type == aiohttp.WSMsgType.PING
                msg = await mute.receive()
                while msg.type == aiohttp.WSMsgType.PING:
                    msg = await mute.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE
        async with session.ws_connect(ex.ws_url + "/stream", autoping=False) as polite:
            # Answer more pings than the pong timeout spans: the connection stays open.
            async with asyncio.timeout(5):
                for _ in range(4):  # a second of pings, more than twice the pong timeout
                    msg = await polite.receive()
                    assert msg.type == aiohttp.WSMsgType.PING
                    await polite.pong(msg.data)
            assert not polite.closed


async def test_rest_pages_equal_the_produced_record(session: aiohttp.ClientSession) -> None:
    """historicalTrades (fromId inclusive, ascending), trades and aggTrades cut the record."""
    async with (
        TestExchange(seed=8, max_trades=1500) as ex,
        session.ws_connect(ex.ws_url + BOTH) as ws,
    ):
        await frames(ws, 3000)
        produced = ex.produced("BTCUSDT")
        first = produced[0].trade_id
        url = ex.rest_url + "/api/v3/historicalTrades"
        async with session.get(url, params={"symbol": "BTCUSDT", "fromId": first + 10}) as r:
            assert r.status == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "25"
            assert decode_rest_trades("BTCUSDT", await r.read()) == produced[10:510]
        params = {"symbol": "BTCUSDT", "fromId": first + 1000, "limit": "1000"}
        async with session.get(url, params=params) as r:
            assert decode_rest_trades("BTCUSDT", await r.read()) == produced[1000:]
        params = {"symbol": "BTCUSDT", "fromId": first + 1500}
        async with session.get(url, params=params) as r:
            assert await r.json() == []
        async with session.get(ex.rest_url + "/api/v3/trades?symbol=ETHUSDT&limit=7") as r:
            assert decode_rest_trades("ETHUSDT", await r.read()) == ex.produced("ETHUSDT")[-7:]
        first_agg = ex.generators["BTCUSDT"].aggregates.first_id
        params = {"symbol": "BTCUSDT", "fromId": first_agg, "limit": "1000"}
        async with session.get(ex.rest_url + "/api/v3/aggTrades", params=params) as r:
            rows = await r.json()
        assert len(rows) == 1000 and rows[0]["a"] == first_agg
        covered = [i for row in rows for i in range(row["f"], row["l"] + 1)]
        assert covered == list(range(first, first + len(covered)))
        assert sum(Decimal(row["q"]) for row in rows) == sum(
            t.quantity for t in produced[: len(covered)]
        )


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("/api/v3/historicalTrades?symbol=NOPEUSDT", 400, -1121),
        ("/api/v3/trades?symbol=btcusdt", 400, -1100),
        ("/api/v3/historicalTrades?symbol=BTCUSDT&limit=1001", 400, -1130),
        ('/api/v3/exchangeInfo?symbols=["BTCUSDT","NOPEUSDT"]', 400, -1121),
    ],
    ids=["unknown-symbol", "lowercase", "limit-over-1000", "unknown-in-list"],
)
async def test_rest_errors_have_binance_bodies(
    session: aiohttp.ClientSession, query: str, status: int, code: int
) -> None:
    """Bad REST parameters give Binance's status and error code, with the weight header."""
    async with TestExchange(seed=9) as ex, session.get(ex.rest_url + query) as r:
        assert (r.status, (await r.json())["code"]) == (status, code)
        assert "X-MBX-USED-WEIGHT-1M" in r.headers


async def test_exchange_info_reports_configured_statuses(session: aiohttp.ClientSession) -> None:
    """exchangeInfo lists statuses; a BREAK symbol produces no trades."""
    async with TestExchange(seed=10, rate=500, statuses={"ETHUSDT": "BREAK"}) as ex:
        url = ex.rest_url + '/api/v3/exchangeInfo?symbols=["BTCUSDT","ETHUSDT"]'
        async with session.get(url) as r:
            info = parse_exchange_info(await r.read())
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        assert info["BTCUSDT"].is_trading and info["ETHUSDT"].status == "BREAK"
        assert info["BTCUSDT"].tick_size == Decimal("0.01")
        await ex.wait_produced("BTCUSDT", 20)
        assert ex.produced_count("ETHUSDT") == 0


async def test_weight_budget_gives_429_then_418(session: aiohttp.ClientSession) -> None:
    """Past the weight budget: 429 with Retry-After and -1003; continuing bans with 418."""
    async with TestExchange(seed=11, weight_limit=50) as ex:
        url = ex.rest_url + "/api/v3/trades?symbol=BTCUSDT"
        for _ in range(2):
            async with session.get(url) as r:
                assert r.status == 200
        async with session.get(url) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
            assert (await r.json())["code"] == -1003
        ex.faults.ban_after_429 = True
        async with session.get(url) as r:
            assert r.status == 418 and "banned until" in (await r.json())["msg"]


async def test_rest_fault_knobs(session: aiohttp.ClientSession) -> None:
    """rest_429_next, rest_418_next and geo_block_rest answer the next requests."""
    async with TestExchange(seed=12, faults=Faults(rest_429_next=1, retry_after_seconds=3)) as ex:
        url = ex.rest_url + "/api/v3/exchangeInfo"
        statuses = []
        for setup in (None, lambda: setattr(ex.faults, "rest_418_next", 1)):
            if setup:
                setup()
            async with session.get(url) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
        assert statuses == [(429, "3"), (418, "3")]
        ex.faults.geo_block_rest = True
        async with session.get(url) as r:
            assert r.status == 451 and (await r.json())["code"] == 0


async def test_geo_block_refuses_the_upgrade_with_451(session: aiohttp.ClientSession) -> None:
    """geo_block_ws answers the WebSocket upgrade with HTTP 451."""
    async with TestExchange(seed=13, faults=Faults(geo_block_ws=True)) as ex:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(ex.ws_url + BOTH)
        assert caught.value.status == 451


async def test_close_after_frames_drops_after_exactly_n(session: aiohttp.ClientSession) -> None:
    """close_next_after_frames hits one connection; close_after_frames every connection."""
    async with TestExchange(seed=14, faults=Faults(close_next_after_frames=25)) as ex:
        async with session.ws_connect(ex.ws_url + BOTH) as ws:
            assert len(trades_of(await until_closed(ws))) == 25
        async with session.ws_connect(ex.ws_url + BOTH) as ws:
            assert len(trades_of(await frames(ws, 100))) == 100
        ex.faults.close_after_frames = 10
        async with session.ws_connect(ex.ws_url + BOTH) as ws:
            assert len(trades_of(await until_closed(ws))) == 10


async def test_skipped_trades_are_missing_on_the_stream_but_served_by_rest(
    session: aiohttp.ClientSession,
) -> None:
    """skip_next makes an id gap on the stream; REST still has the skipped trades."""
    async with (
        TestExchange(["BTCUSDT"], seed=15, rate=2000) as ex,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@trade") as ws,
    ):
        before = trades_of(await frames(ws, 20))
        ex.faults.skip_next = 7
        after = trades_of(await frames(ws, 50))
        seen = {t.trade_id for t in before + after}
        span = range(before[0].trade_id, after[-1].trade_id + 1)
        gaps = [i for i in span if i not in seen]
        assert len(gaps) == 7 and gaps == list(range(gaps[0], gaps[0] + 7))
        url = f"{ex.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT&fromId={gaps[0]}&limit=7"
        async with session.get(url) as r:
            assert [t.trade_id for t in decode_rest_trades("BTCUSDT", await r.read())] == gaps


async def test_from_id_of_lost_ids_answers_a_full_page_from_the_next_id_it_has(
    session: aiohttp.ClientSession,
) -> None:
    """Like Binance: fromId at ids the exchange never had (lose_next) starts at the first id
    after them, and the page is still `limit` rows long; rest_empty_next answers [] once."""
    async with (
        TestExchange(["BTCUSDT"], seed=17, rate=2000) as ex,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@trade") as ws,
    ):
        await frames(ws, 5)
        ex.faults.lose_next = 12
        await frames(ws, 30)
        lost = sorted(ex.never_served("BTCUSDT"))
        assert lost == list(range(lost[0], lost[0] + 12))
        url = f"{ex.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT&fromId={lost[0]}&limit=10"
        async with session.get(url) as r:
            ids = [t.trade_id for t in decode_rest_trades("BTCUSDT", await r.read())]
        assert ids == list(range(lost[-1] + 1, lost[-1] + 11))
        ex.faults.rest_empty_next = 1
        async with session.get(url) as r:
            assert await r.read() == b"[]"
        assert ex.rest.requests["/api/v3/historicalTrades"] == 2


async def test_duplicates_and_junk_are_interleaved(session: aiohttp.ClientSession) -> None:
    """duplicate_fraction re-sends frames; malformed_fraction adds junk between trades."""
    faults = Faults(duplicate_fraction=1.0, malformed_fraction=0.5)
    async with (
        TestExchange(["BTCUSDT"], seed=16, faults=faults) as ex,
        session.ws_connect(ex.ws_url + "/stream?streams=btcusdt@trade") as ws,
    ):
        items = await frames(ws, 400)
        trades = trades_of(items)
        junk = [i for i in items if not isinstance(i, WireTrade)]
        assert junk and len(junk) + len(trades) == 400
        assert trades[0::2] == trades[1::2][: len(trades[0::2])]  # each trade arrives twice
        assert contiguous(list(dict.fromkeys(trades)))


async def test_stall_silences_data_and_pings_then_resumes_with_a_gap(
    session: aiohttp.ClientSession,
) -> None:
    """A stalled connection gets nothing (not even pings), then live trades after a gap."""
    limits = ConnectionLimits(ping_interval=0.05, pong_timeout=1.0, max_incoming_per_second=100)
    faults = Faults(stall_after_frames=50, stall_seconds=0.4)
    async with (
        TestExchange(["BTCUSDT"], seed=17, rate=1000, limits=limits, faults=faults) as ex,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@trade", autoping=False) as ws,
    ):
        first: list[WireTrade] = []
        while len(first) < 50:
            msg = await ws.receive(timeout=2)
            if msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
            else:
                first.append(decode_frame(msg.data))  # type: ignore[arg-type]
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)
        msg = await ws.receive(timeout=2)
        while msg.type != aiohttp.WSMsgType.TEXT:
            msg = await ws.receive(timeout=2)
        resumed = decode_frame(msg.data)
        assert isinstance(resumed, WireTrade) and resumed.trade_id > first[-1].trade_id + 1


async def test_server_shutdown_then_1001(session: aiohttp.ClientSession) -> None:
    """shutdown_after_frames sends serverShutdown (combined form), then closes 1001."""
    faults = Faults(shutdown_after_frames=20, shutdown_close_delay=0.1)
    async with (
        TestExchange(seed=18, rate=2000, faults=faults) as ex,
        session.ws_connect(ex.ws_url + BOTH) as ws,
    ):
        items = await until_closed(ws)
        kinds = [type(i) for i in items]
        assert kinds[:20] == [WireTrade] * 20 and kinds[20] is ServerShutdown
        assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY


async def test_lifetime_and_imperative_faults(session: aiohttp.ClientSession) -> None:
    """lifetime_seconds closes 1001; drop_connections gives a close without a frame."""
    async with TestExchange(seed=19, rate=100, faults=Faults(lifetime_seconds=0.3)) as ex:
        async with session.ws_connect(ex.ws_url + BOTH) as ws:
            await until_closed(ws)
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        ex.faults.lifetime_seconds = None
        async with session.ws_connect(ex.ws_url + BOTH) as ws:
            await frames(ws, 2)
            ex.shutdown_connections(close_delay=0.05)
            assert any(isinstance(i, ServerShutdown) for i in await until_closed(ws))
        async with session.ws_connect(ex.ws_url + BOTH) as ws:
            await frames(ws, 2)
            ex.drop_connections()
            await until_closed(ws)
            assert ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE


async def test_overlapping_connections_both_get_every_later_trade(
    session: aiohttp.ClientSession,
) -> None:
    """Two connections at once both receive all trades produced after they subscribed."""
    async with (
        TestExchange(["BTCUSDT"], seed=20, rate=2000) as ex,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@trade") as a,
        session.ws_connect(ex.ws_url + "/ws/btcusdt@trade") as b,
    ):
        got_a, got_b = trades_of(await frames(a, 100)), trades_of(await frames(b, 100))
        overlap = {t.trade_id for t in got_a} & {t.trade_id for t in got_b}
        assert len(overlap) >= 50 and got_b[-1] in ex.produced("BTCUSDT")
        assert contiguous(got_a) and contiguous(got_b)


async def test_command_line_serves_and_announces_urls(session: aiohttp.ClientSession) -> None:
    """`binprice exchange` (via ExchangeProcess) announces URLs and serves."""
    args = ["--rate", "500", "--symbols", "BTCUSDT", "--status", "BTCUSDT=TRADING"]
    async with ExchangeProcess(args) as proc:
        async with session.ws_connect(proc.ws_url + "/ws/btcusdt@trade") as ws:
            assert trades_of(await frames(ws, 3), "BTCUSDT")
        async with session.get(proc.rest_url + "/api/v3/trades?symbol=BTCUSDT&limit=2") as r:
            assert len(decode_rest_trades("BTCUSDT", await r.read())) == 2


async def test_a_paused_symbol_goes_quiet_and_resumes_without_a_burst() -> None:
    """`paused` stops a symbol's production (the others go on); resuming continues at the rate."""
    async with TestExchange(["BTCUSDT", "ETHUSDT"], seed=3, rate=200) as ex:
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", 20), 10)
        ex.paused.add("BTCUSDT")
        await asyncio.sleep(0)
        quiet_at = ex.produced_count("BTCUSDT")
        eth = ex.produced_count("ETHUSDT")
        await asyncio.wait_for(ex.wait_produced("ETHUSDT", eth + 100), 10)
        assert ex.produced_count("BTCUSDT") <= quiet_at + 1  # at most one tick in flight
        ex.paused.clear()
        resumed_at = ex.produced_count("BTCUSDT")
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", resumed_at + 1), 10)
        # No catch-up burst: the first tick after resuming carries a tick's worth, not the pause.
        assert ex.produced_count("BTCUSDT") - resumed_at < 50


async def test_per_symbol_rates_pace_each_symbol_on_its_own() -> None:
    """`rates` paces the symbols it names; a 20x slower symbol produces a fraction as much."""
    async with TestExchange(["BTCUSDT", "ETHUSDT"], seed=23, rates={"ETHUSDT": 20}) as ex:
        assert ex.rates == {"ETHUSDT": 20}  # BTCUSDT is left at full speed (needs a reader)
        await asyncio.wait_for(ex.wait_produced("ETHUSDT", 3), 10)
    async with TestExchange(["BTCUSDT", "ETHUSDT"], seed=24, rate=400, rates={"ethusdt": 20}) as ex:
        await asyncio.wait_for(ex.wait_produced("BTCUSDT", 400), 10)
        assert ex.produced_count("ETHUSDT") <= ex.produced_count("BTCUSDT") // 10


def test_rates_must_name_listed_symbols_and_be_positive() -> None:
    """A rate for a symbol the exchange does not list, or a rate <= 0, is refused up front."""
    with pytest.raises(ValueError, match="NOPEUSDT"):
        TestExchange(["BTCUSDT"], rates={"NOPEUSDT": 1})
    with pytest.raises(ValueError, match="positive"):
        TestExchange(["BTCUSDT"], rates={"BTCUSDT": 0})


def test_command_line_rate_of_overrides_the_rate_of_one_symbol() -> None:
    """--rate-of SYMBOL=RATE sets one symbol's paced rate; an unlisted symbol is an error."""
    options = ExchangeOptions("BTCUSDT,ETHUSDT", rate="5", rate_of=["ethusdt=.2"])
    assert build_exchange(options).rates == {"BTCUSDT": 5.0, "ETHUSDT": 0.2}
    with pytest.raises(UsageError, match="missing from --symbols: XRPUSDT"):
        build_exchange(ExchangeOptions("BTCUSDT", rate_of=["XRPUSDT=1"]))
