"""latest, at, range, candles and export answered from aggregate trades (#19 item 4), through
the Store and the command line: one timeline (testing/timeline.py) imported as trades and as
aggregate trades gives the same candles and window summaries from either."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

import binprice
from binprice.cli import cli
from binprice.history import ImportOptions, import_history
from binprice.history._archive import daily
from binprice.markets import Market
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.archive_kinds import ArchivePath, file_lines
from tests.test_agg_import import DAY, DAYS, SERIES, archive_rows
from tests.test_import import LATER

START = datetime.combine(DAY, datetime.min.time(), UTC)
END = START + timedelta(days=DAYS)


async def _import(
    url: str, series: ArchiveMarket, symbol: str, market: Market, spool: Path
) -> None:
    """The window imported twice from one archive: its trades and its aggregate trades."""
    async with ArchiveServer(series) as served:
        for kind in ("trades", "aggTrades"):
            opts = ImportOptions(
                (symbol,),
                start=DAY,
                end=DAY + timedelta(days=DAYS),
                archive_url=served.url,
                spool_dir=spool / kind,
                market=market,
                kind=kind,
                today=LATER,
                compress_after=None,
            )
            summary = await import_history(opts, url)
            assert summary.ok


@pytest.fixture(params=SERIES, ids=[m.value for m, _ in SERIES])
def imported(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[binprice.Store, ArchiveMarket, Market, str]]:
    import asyncio

    market, symbol = request.param
    series = ArchiveMarket.generate(
        [symbol],
        DAY - timedelta(days=1),
        DAY + timedelta(days=DAYS + 1),
        trades_per_day=300,
        market=market,
    )
    asyncio.run(_import(database_url, series, symbol, market, tmp_path))
    with psycopg.connect(database_url) as conn:  # each kind's timeline sees its own files only
        assert conn.execute("SELECT count(*) FROM gaps").fetchone() == (0,)
        kinds = conn.execute("SELECT kind, count(*) FROM imports GROUP BY kind ORDER BY kind")
        assert kinds.fetchall() == [(0, DAYS), (1, DAYS)]
    with binprice.connect(database_url) as store:
        yield store, series, market, symbol


def test_candles_and_ranges_from_aggregates_equal_those_from_the_trades(
    imported: tuple[binprice.Store, ArchiveMarket, Market, str],
) -> None:
    """Per interval (aligned and not), every candle of the aggregates is the candle of the same
    trades: open, high, low, close, volume, quote volume, trades (merged), VWAP; so is the
    window's summary."""
    store, _, market, symbol = imported
    for interval in ("1m", "15m", "1h", "1d"):
        trades = store.candles([symbol], interval, START, END, market=market)
        aggs = store.candles([symbol], interval, START, END, market=market, kind="aggTrades")
        assert aggs == trades and len(trades) > 1, interval
    odd = (START + timedelta(minutes=7, seconds=13), END - timedelta(hours=5, milliseconds=3))
    assert store.candles([symbol], "1h", *odd, market=market, kind="aggTrades") == store.candles(
        [symbol], "1h", *odd, market=market
    )
    assert store.range(*odd, [symbol], market=market, kind="aggTrades") == store.range(
        *odd, [symbol], market=market
    )
    assert sum(c.trades for c in store.candles([symbol], "1d", START, END, market=market)) == (
        store.range(START, END, [symbol], market=market)[0].trades
    )


def test_latest_and_at_from_aggregates(
    imported: tuple[binprice.Store, ArchiveMarket, Market, str],
) -> None:
    """`latest` is the highest aggregate id, with every field; `at` the aggregate nearest to
    a time (or the last before it), whose trades are the nearest trades; a symbol of another
    market has none."""
    store, series, market, symbol = imported
    rows = archive_rows(series, symbol, market)
    (last,) = store.latest([symbol], market=market, kind="aggTrades")
    assert isinstance(last, binprice.AggTrade)
    _, agg_id, price, quantity, first, last_id, ms, maker = rows[-1]
    assert (last.agg_id, last.price, last.quantity) == (agg_id, price, quantity)
    assert (last.first_trade_id, last.last_trade_id, last.is_buyer_maker) == (first, last_id, maker)
    assert last.time == datetime.fromtimestamp(ms / 1000, UTC)
    (trade,) = store.latest([symbol], market=market)
    assert (trade.trade_id, trade.price) == (last.last_trade_id, last.price)
    for moment in (START + timedelta(hours=3, seconds=1), END - timedelta(minutes=1)):
        for before in (False, True):
            (agg,) = store.at(moment, [symbol], before=before, market=market, kind="aggTrades")
            (near,) = store.at(moment, [symbol], before=before, market=market)
            assert isinstance(agg, binprice.AggAt)
            assert (agg.time, agg.offset_ms) == (near.timestamp, near.offset_ms)
            assert agg.price == near.price
            assert agg.first_trade_id <= near.trade_id <= agg.last_trade_id
    far = END + timedelta(days=3)
    assert store.at(far, [symbol], within="1h", market=market, kind="aggTrades") == []
    (after,) = store.at(far, [symbol], within="4d", market=market, kind="aggTrades")
    assert after.agg_id == last.agg_id and after.offset_ms < 0
    other = next(m for m in Market if m is not market)
    assert store.latest([symbol], market=other, kind="aggTrades") == []


def test_export_ndjson_and_binance_give_back_the_archives_aggregates(
    imported: tuple[binprice.Store, ArchiveMarket, Market, str],
) -> None:
    """`export -f ndjson --kind aggTrades` gives every aggregate of the archive field by field
    (Binance's archive names); `-f binance` gives the market's aggTrades CSV byte for byte."""
    store, series, market, symbol = imported
    out = io.BytesIO()
    written = store.export([symbol], START, END, "ndjson", out, market=market, kind="aggTrades")
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    expected = archive_rows(series, symbol, market)
    assert written == len(lines) == len(expected)
    for line, (sym, agg_id, price, quantity, first, last, ms, maker) in zip(
        lines, expected, strict=True
    ):
        stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
        assert line == {
            "symbol": sym,
            "agg_trade_id": agg_id,
            "price": str(price),
            "quantity": str(quantity),
            "first_trade_id": first,
            "last_trade_id": last,
            "transact_time": stamp.replace("+00:00", "Z"),
            "is_buyer_maker": maker,
        }
    assert Decimal(lines[0]["price"]) == expected[0][2]
    day = daily(symbol, DAY)  # before 2025: spot's times are ms, so the bytes are Binance's
    served = "".join(file_lines(series, ArchivePath(market, "aggTrades", day))).encode()
    csv = io.BytesIO()
    window = (START, START + timedelta(days=1))
    store.export([symbol], *window, "binance", csv, market=market, kind="aggTrades")
    assert csv.getvalue() == served


def test_kind_on_the_command_line(
    imported: tuple[binprice.Store, ArchiveMarket, Market, str], database_url: str
) -> None:
    """`--kind aggTrades` on latest, at, range, candles and export; JSON named as Binance's
    archive; an unknown kind is one `error:` line."""
    _, series, market, symbol = imported
    runner = CliRunner()
    base = ["--database-url", database_url]
    where = ["--market", market.value, "--kind", "aggTrades"]
    done = runner.invoke(cli, [*base, "latest", symbol, *where, "--json"])
    assert done.exit_code == 0, done.output
    (latest,) = json.loads(done.stdout)
    assert latest["agg_trade_id"] == archive_rows(series, symbol, market)[-1][1]
    assert list(latest) == list(binprice.kinds.AGG_FIELD_NAMES)
    window = ["--start", START.isoformat(), "--end", END.isoformat()]
    for args in (
        ["at", symbol, "--ts", (START + timedelta(hours=1)).isoformat(), "--json"],
        ["range", symbol, *window, "--json"],
        ["candles", symbol, "1h", *window, "--json"],
    ):
        done = runner.invoke(cli, [*base, *args, *where])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)
    done = runner.invoke(cli, [*base, "export", symbol, *window, *where, "-f", "csv"])
    assert done.exit_code == 0, done.output
    header, *rows = done.stdout.splitlines()
    assert header.split(",") == list(binprice.kinds.AGG_FIELD_NAMES)
    assert len(rows) == len(archive_rows(series, symbol, market))
    done = runner.invoke(cli, [*base, "latest", symbol, "--kind", "klines"])
    assert done.exit_code != 0
    assert "error: unknown kind 'klines'; choose trades or aggTrades" in done.output


def test_prune_deletes_aggregate_trades_before_the_cut(
    imported: tuple[binprice.Store, ArchiveMarket, Market, str], database_url: str
) -> None:
    """`db prune` deletes the aggregates before the months it drops (every market) and says
    how many; a plan counts them and changes nothing."""
    store, _, market, symbol = imported
    cut = datetime(2025, 1, 1, tzinfo=UTC)  # the window's first day is 2024-12-31
    with psycopg.connect(database_url) as conn:
        (older,) = conn.execute(
            'SELECT count(*) FROM agg_trades WHERE "timestamp" < %s', (cut,)
        ).fetchone()  # type: ignore[misc]
    assert older > 0
    assert store.plan_prune(cut).agg_trades == older
    result = store.prune(cut)
    assert result.agg_trades == older
    with psycopg.connect(database_url) as conn:
        left = conn.execute('SELECT min("timestamp") FROM agg_trades').fetchone()
    assert left is not None and left[0] >= cut
    assert store.plan_prune(cut).agg_trades == 0
    assert store.latest([symbol], market=market, kind="aggTrades")


def test_candles_of_multi_fill_aggregates_equal_the_candles_of_their_trades(
    database_url: str,
) -> None:
    """Live-like orders of several fills (the test exchange's generator): each aggregate
    merges 1-n trades at one price, and its candles and window summary still equal the trades'
    (``trades`` counts the fills merged, not the aggregates)."""
    from binprice.db.partitions import ensure_partitions
    from binprice.testing.generator import US_PER_MS, TradeGenerator
    from tests.test_market_storage import _copy
    from tests.trades_data import Row

    generator = TradeGenerator("ETHUSDT", seed=7, market=Market.USDM)
    begin = int(START.timestamp() * 1000) * US_PER_MS
    generator.produce(1, begin)
    generator.produce(3000, begin + 6 * 3600 * 1_000_000)
    trades = generator.trades()
    aggs = [generator.agg(k) for k in range(len(generator.aggregates))]
    assert len(aggs) < len(trades) * 0.8  # many aggregates of several fills
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_partitions(conn, START, END)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO agg_trades (market, symbol, agg_id, price, quantity, first_trade_id,"
                ' last_trade_id, "timestamp", is_buyer_maker) '
                "VALUES (1, %s, %s, %s, %s, %s, %s, to_timestamp(%s / 1000.0), %s)",
                [
                    (
                        a.symbol,
                        a.agg_id,
                        a.price,
                        a.quantity,
                        a.first_trade_id,
                        a.last_trade_id,
                        a.time_ms,
                        a.is_buyer_maker,
                    )
                    for a in aggs
                ],
            )
    rows = [
        Row(
            t.symbol,
            t.trade_id,
            t.price,
            t.quantity,
            datetime.fromtimestamp(t.time_ms / 1000, UTC),
            t.is_buyer_maker,
        )
        for t in trades
    ]
    _copy(database_url, rows, Market.USDM.number)
    with binprice.connect(database_url) as store:
        for interval in ("1m", "5m", "1h"):
            mine = store.candles(["ETHUSDT"], interval, START, END, market="usdm", kind="aggTrades")
            assert mine == store.candles(["ETHUSDT"], interval, START, END, market="usdm")
            assert sum(c.trades for c in mine) == len(trades)
        window = (START + timedelta(minutes=31, milliseconds=7), START + timedelta(hours=4))
        assert store.range(*window, ["ETHUSDT"], market="usdm", kind="aggTrades") == store.range(
            *window, ["ETHUSDT"], market="usdm"
        )
