"""The test archive and the test exchange describe one market: the same id is the same trade."""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest

from binprice.exchange.protocol import WireTrade
from binprice.exchange.rest import RestClient
from binprice.history._archive import daily
from binprice.markets import Market
from binprice.testing import TestExchange
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.archive_kinds import HEADERS
from binprice.testing.timeline import HISTORY_TRADES_PER_DAY, History

SEED = 7
KEY = "anyWellFormedKey42"


def test_two_archives_agree_on_the_days_they_share() -> None:
    """A day's ids and trades do not depend on the first day an archive serves."""
    early = ArchiveMarket.generate(["BTCUSDT"], date(2024, 12, 1), date(2024, 12, 4), seed=SEED)
    late = ArchiveMarket.generate(["BTCUSDT"], date(2024, 12, 3), date(2024, 12, 5), seed=SEED)
    day = daily("BTCUSDT", date(2024, 12, 3))
    shared = list(early.trades(day))
    assert shared == list(late.trades(day)) and len(shared) == 20
    other_seed = ArchiveMarket.generate(["BTCUSDT"], date(2024, 12, 3), date(2024, 12, 4))
    assert [t.trade_id for t in other_seed.trades(day)] == [t.trade_id for t in shared]
    assert [t.price for t in other_seed.trades(day)] != [t.price for t in shared]


async def _history_page(ex: TestExchange, market: Market, from_id: int) -> list[WireTrade]:
    async with aiohttp.ClientSession() as session:
        rest = RestClient(session, ex.rest_url, market=market, api_key=KEY)
        return await rest.historical_trades("BTCUSDT", from_id, attempts=1)


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM], ids=["spot", "usdm"])
async def test_the_exchange_serves_the_archives_trades_for_the_same_ids(market: Market) -> None:
    """historicalTrades of the exchange below its first live id are the archive's trades, and
    every live id lies above every archived one: importing the archive into a database the
    exchange filled conflicts nowhere."""
    archive = ArchiveMarket.generate(
        ["BTCUSDT"],
        date(2025, 1, 30),
        date(2025, 2, 1),
        seed=SEED,
        trades_per_day=HISTORY_TRADES_PER_DAY,
        market=market,
    )
    archived = [t for day in (30, 31) for t in archive.trades(daily("BTCUSDT", date(2025, 1, day)))]
    async with TestExchange(["BTCUSDT"], seed=SEED, market=market) as ex:
        ex.rest.history = History(SEED, market)
        page_limit = 500 if market is Market.USDM else 1000
        served: list[WireTrade] = []
        while len(served) < len(archived):
            served += await _history_page(ex, market, archived[len(served)].trade_id)
        assert served[: len(archived)] == archived
        assert len(served) % page_limit == 0  # full pages: the history goes on past January
        live_first = ex.generators["BTCUSDT"].first_id
    assert archived[-1].trade_id < live_first


async def test_history_runs_into_the_live_trades_without_a_hole() -> None:
    """The page before the exchange's first id ends with the history's last trade of today and
    goes on with the first live trade: one id line, contiguous."""
    async with TestExchange(["BTCUSDT"], seed=SEED, max_trades=5) as ex:
        ex.rest.history = History(SEED, Market.SPOT)
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(ex.ws_url + "/stream?streams=btcusdt@trade") as ws,
        ):
            await ex.wait_produced("BTCUSDT", 5)
            await ws.close()
        first = ex.produced("BTCUSDT")[0]
        page = await _history_page(ex, Market.SPOT, first.trade_id - 3)
        first_agg = ex.generators["BTCUSDT"].aggregates.first_id
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, ex.rest_url)
            aggregates = await rest.agg_trades("BTCUSDT", from_id=first_agg - 2)
    # The aggregate ids run on too, and the history's aggregates are one trade each.
    assert [a.agg_id for a in aggregates] == list(
        range(first_agg - 2, first_agg - 2 + len(aggregates))
    )
    assert [(a.first_trade_id, a.last_trade_id) for a in aggregates[:2]] == [
        (first.trade_id - 2, first.trade_id - 2),
        (first.trade_id - 1, first.trade_id - 1),
    ]
    assert aggregates[2].first_trade_id == first.trade_id
    assert [t.trade_id for t in page] == list(range(first.trade_id - 3, first.trade_id + 5))
    assert page[3:] == ex.produced("BTCUSDT")
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # Today's history (a day of slack: the test may straddle midnight).
    since_ms = (midnight - timedelta(days=1)).timestamp() * 1000
    assert all(since_ms <= t.time_ms <= first.time_ms for t in page[:3])
    assert all(a.time_ms <= b.time_ms for a, b in itertools.pairwise(page))


async def test_the_archive_server_and_exchange_rest_agree() -> None:
    """The archive's own REST (rest=True) and the exchange's history answer alike."""
    archive = ArchiveMarket.generate(
        ["BTCUSDT"], date(2025, 3, 1), date(2025, 3, 2), seed=SEED, trades_per_day=1000
    )
    first = archive.generators["BTCUSDT"].first_id
    async with ArchiveServer(archive, rest=True) as server, aiohttp.ClientSession() as session:
        from_archive = await RestClient(session, server.url).historical_trades(
            "BTCUSDT", first + 10, 1
        )
    async with TestExchange(["BTCUSDT"], seed=SEED) as ex:
        ex.rest.history = History(SEED, Market.SPOT)
        from_exchange = await _history_page(ex, Market.SPOT, first + 10)
    assert from_archive == from_exchange[: len(from_archive)] and len(from_archive) == 990


async def _zip_lines(url: str) -> tuple[list[str], str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200, url
            data = await resp.read()
        async with session.get(url + ".CHECKSUM") as resp:
            checksum = (await resp.text()).split()[0]
    assert checksum == hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        [member] = archive.infolist()
        return archive.read(member).decode().splitlines(), member.filename


async def test_futures_archive_files_match_the_exchange_with_their_own_dialect() -> None:
    """data/futures/um: a header row, lowercase booleans, ms times, short decimals; the same
    trades the USD-M exchange serves for those ids; aggTrades one per history trade."""
    day = date(2025, 2, 1)
    market = ArchiveMarket.generate(
        ["BTCUSDT"], day, day + timedelta(days=1), seed=SEED,
        trades_per_day=HISTORY_TRADES_PER_DAY, market=Market.USDM,
    )  # fmt: skip
    async with ArchiveServer(market) as server:
        base = f"{server.url}/data/futures/um/daily"
        trades, member = await _zip_lines(f"{base}/trades/BTCUSDT/BTCUSDT-trades-2025-02-01.zip")
        aggs, _ = await _zip_lines(f"{base}/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2025-02-01.zip")
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{server.url}/data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-02-01.zip"
            ) as resp,
        ):
            assert resp.status == 404  # a USD-M archive has no Spot files
    assert member == "BTCUSDT-trades-2025-02-01.csv"
    assert trades[0] == HEADERS[Market.USDM, "trades"]
    assert aggs[0] == HEADERS[Market.USDM, "aggTrades"]
    rows = [line.split(",") for line in trades[1:]]
    assert len(rows) == HISTORY_TRADES_PER_DAY
    async with TestExchange(["BTCUSDT"], seed=SEED, market=Market.USDM) as ex:
        ex.rest.history = History(SEED, Market.USDM)
        served = await _history_page(ex, Market.USDM, int(rows[0][0]))
    for row, trade in zip(rows, served, strict=False):
        assert int(row[0]) == trade.trade_id and int(row[4]) == trade.time_ms
        assert Decimal(row[1]) == trade.price and Decimal(row[2]) == trade.quantity
        assert row[5] == ("true" if trade.is_buyer_maker else "false")
        assert Decimal(row[3]) == trade.price * trade.quantity
        assert len(row[1].partition(".")[2]) == 1  # USD-M BTCUSDT: a 0.1 tick
    agg_rows = [line.split(",") for line in aggs[1:]]
    assert [(int(a[3]), int(a[4])) for a in agg_rows] == [(int(r[0]), int(r[0])) for r in rows]
    async with TestExchange(["BTCUSDT"], seed=SEED, market=Market.USDM) as ex:
        ex.rest.history = History(SEED, Market.USDM)
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, ex.rest_url, market=Market.USDM)
            served_aggs = await rest.agg_trades("BTCUSDT", from_id=int(agg_rows[0][0]))
    assert [
        (a.agg_id, a.price, a.quantity, a.first_trade_id, a.time_ms, a.is_buyer_maker)
        for a in served_aggs
    ] == [
        (int(r[0]), Decimal(r[1]), Decimal(r[2]), int(r[3]), int(r[5]), r[6] == "true")
        for r in agg_rows
    ]


async def test_coinm_and_spot_aggregate_files_have_their_columns() -> None:
    """COIN-M trades carry base_qty (contracts x 100 / price); Spot aggTrades have no header,
    True/False and a best-match column, in µs from 2025."""
    day = date(2025, 2, 1)
    coinm = ArchiveMarket.generate(
        ["BTCUSD_PERP"], day, day + timedelta(days=1), trades_per_day=4, market=Market.COINM
    )
    spot = ArchiveMarket.generate(["BTCUSDT"], day, day + timedelta(days=1), trades_per_day=4)
    async with ArchiveServer(coinm) as server:
        lines, _ = await _zip_lines(
            f"{server.url}/data/futures/cm/daily/trades/BTCUSD_PERP/BTCUSD_PERP-trades-2025-02-01.zip"
        )
    assert lines[0] == "id,price,qty,base_qty,time,is_buyer_maker" and len(lines) == 1 + 4
    generator = coinm.generators["BTCUSD_PERP"]
    first = lines[1].split(",")
    assert Decimal(first[3]) == generator.base_quantity(0)
    assert first[2] == str(int(Decimal(first[2])))  # whole contracts
    async with ArchiveServer(spot) as server:
        lines, _ = await _zip_lines(
            f"{server.url}/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2025-02-01.zip"
        )
    fields = lines[0].split(",")
    assert len(lines) == 4 and len(fields) == 8 and fields[6] in ("True", "False")
    assert fields[7] == "True" and len(fields[5]) == 16  # µs
