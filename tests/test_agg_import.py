"""`binprice import --kind aggTrades` from the test archive into `agg_trades` (#19 item 4):
daily files of each market read back exactly, re-import a no-op, an overlap with aggregates
already stored (live capture) not duplicated, gaps of aggregate ids recorded with kind 1."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from binprice.events import EventKind
from binprice.history import ImportOptions, import_history
from binprice.history._archive import daily, monthly
from binprice.history._results import FileStatus
from binprice.kinds import TradeKind
from binprice.markets import Market
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.archive_kinds import ArchivePath, file_lines
from tests.ingest_helpers import binprice_async
from tests.test_import import LATER, run

#: Spot's aggTrades files switch to µs on 2025-01-01: the window crosses it.
DAY = date(2024, 12, 31)
DAYS = 2
#: (market, symbol): one of each market.
SERIES = [(Market.SPOT, "BTCUSDT"), (Market.USDM, "BTCUSDT"), (Market.COINM, "BTCUSD_PERP")]
#: An aggregate row as stored and as the archive's CSV gives it.
AggRow = tuple[str, int, Decimal, Decimal, int, int, int, bool]


def archive(market: Market, symbol: str) -> ArchiveMarket:
    return ArchiveMarket.generate(
        [symbol],
        DAY - timedelta(days=1),
        DAY + timedelta(days=DAYS + 1),
        trades_per_day=80,
        market=market,
    )


def options(url: str, symbol: str, market: Market, spool: Path, **more: object) -> ImportOptions:
    window = {"start": DAY, "end": DAY + timedelta(days=DAYS), "today": LATER}
    fields = {"archive_url": url, "spool_dir": spool, "market": market, "kind": "aggTrades"}
    return ImportOptions((symbol,), **(window | fields | more))  # type: ignore[arg-type]


def archive_rows(series: ArchiveMarket, symbol: str, market: Market) -> list[AggRow]:
    """The window's aggregates as the archive's files write them (an aggregate spanning
    midnight is in both days' files: once here)."""
    rows: dict[int, AggRow] = {}
    for i in range(DAYS):
        file = daily(symbol, DAY + timedelta(days=i))
        for line in file_lines(series, ArchivePath(market, "aggTrades", file)):
            if line[0].isalpha():  # a futures header
                continue
            a, p, q, f, last, t, m, *_ = line.strip().split(",")
            ms = int(t) // 1000 if len(t) == 16 else int(t)
            row = (symbol, int(a), Decimal(p), Decimal(q), int(f), int(last), ms)
            rows[int(a)] = (*row, m.lower() == "true")
    return [rows[a] for a in sorted(rows)]


def stored_aggs(url: str, market: Market) -> list[AggRow]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, agg_id, price, quantity, first_trade_id, last_trade_id, timestamp, "
            "is_buyer_maker FROM agg_trades WHERE market = %s ORDER BY symbol, agg_id",
            (market.number,),
        ).fetchall()
    return [
        (s, a, p, q, f, last, int(ts.astimezone(UTC).timestamp() * 1000 + 0.5), m)
        for s, a, p, q, f, last, ts, m in rows
    ]


@pytest.mark.parametrize(("market", "symbol"), SERIES, ids=[m.value for m, _ in SERIES])
async def test_daily_aggtrades_files_of_each_market_are_stored_exactly_once(
    market: Market, symbol: str, database_url: str, tmp_path: Path
) -> None:
    """Two daily aggTrades files land field by field in `agg_trades` of their market (exact
    decimals, ms times, the aggregate at midnight once); trades and other markets untouched;
    `imports` rows carry kind 1; a second run skips both files and adds nothing."""
    series = archive(market, symbol)
    async with ArchiveServer(series) as served:
        summary, _ = await run(options(served.url, symbol, market, tmp_path), database_url)
        again, _ = await run(options(served.url, symbol, market, tmp_path), database_url)
    assert summary.ok and again.ok
    expected = archive_rows(series, symbol, market)
    assert len(expected) > 100
    assert stored_aggs(database_url, market) == expected
    assert summary.last_trade_ids[symbol] == expected[-1][1]
    assert {f.status for s in again.symbols for f in s.files} == {FileStatus.SKIPPED}
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute("SELECT DISTINCT market, kind, state FROM imports").fetchall()
        assert kinds == [(market.number, TradeKind.AGG_TRADES.number, "done")]
        assert conn.execute("SELECT count(*) FROM trades").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM gaps").fetchone() == (0,)
    others = [m for m in Market if m is not market]
    assert all(stored_aggs(database_url, m) == [] for m in others)


def _insert(url: str, market: Market, rows: list[AggRow]) -> None:
    """Store `rows` as live capture would have, before the import."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO agg_trades (market, symbol, agg_id, price, quantity, first_trade_id, "
            'last_trade_id, "timestamp", is_buyer_maker) '
            "VALUES (%s, %s, %s, %s, %s, %s, %s, to_timestamp(%s / 1000.0), %s)",
            [(market.number, *row) for row in rows],
        )


async def test_an_import_overlapping_stored_aggregates_adds_only_the_others(
    database_url: str, tmp_path: Path
) -> None:
    """Aggregates already stored inside both files (live capture) are neither duplicated nor
    refused: the loader's COPY falls back to `ON CONFLICT DO NOTHING` for the blocks that
    reach them, and the files' `inserted` counts only the new ones."""
    market, symbol = Market.USDM, "BTCUSDT"
    series = archive(market, symbol)
    expected = archive_rows(series, symbol, market)
    live = expected[30:40] + expected[-15:-5]
    _insert(database_url, market, live)
    async with ArchiveServer(series) as served:
        # Small blocks, so that fast COPY blocks and staged ones alternate within a file.
        opts = options(served.url, symbol, market, tmp_path, block_bytes=512, commit_rows=40)
        summary, _ = await run(opts, database_url)
    assert summary.ok
    assert stored_aggs(database_url, market) == expected
    files = [f for s in summary.symbols for f in s.files]
    assert sum(f.inserted for f in files) == len(expected) - len(live)
    assert sum(f.rows for f in files) == len(expected)


async def test_aggregate_ids_missing_between_imports_are_a_gap_of_kind_1(
    database_url: str, tmp_path: Path
) -> None:
    """Importing the first day, then the day after next, leaves the ids of the day between
    missing: one `skipped` gap (a day not asked for) with kind 1, none of kind 0."""
    market, symbol = Market.COINM, "BTCUSD_PERP"
    series = ArchiveMarket.generate(
        [symbol], DAY, DAY + timedelta(days=3), trades_per_day=50, market=market
    )
    async with ArchiveServer(series) as served:
        for day in (0, 2):
            start = DAY + timedelta(days=day)
            opts = options(
                served.url, symbol, market, tmp_path, start=start, end=start + timedelta(days=1)
            )
            summary, _ = await run(opts, database_url)
            assert summary.ok
    with psycopg.connect(database_url) as conn:
        gaps = conn.execute(
            "SELECT market, kind, symbol, first_id, last_id, state FROM gaps"
        ).fetchall()
    stored = [row[1] for row in stored_aggs(database_url, market)]
    assert len(stored) == 100
    hole = (stored[49] + 1, stored[50] - 1)
    assert hole[1] - hole[0] + 1 == 50
    assert gaps == [(market.number, 1, symbol, *hole, "skipped")]
    assert summary.symbols[0].gaps[0].first_id == hole[0]


async def test_a_stopped_aggtrades_import_resumes_after_its_last_committed_aggregate(
    database_url: str, tmp_path: Path
) -> None:
    """Stopped after its first chunk, a file is `partial` (kind 1) with its last aggregate id;
    the next run resumes there, and every aggregate is stored once."""
    market, symbol = Market.SPOT, "ETHUSDT"
    series = ArchiveMarket.generate([symbol], DAY, DAY + timedelta(days=1), trades_per_day=3000)
    name = f"{symbol}-aggTrades-{DAY.isoformat()}.zip"
    async with ArchiveServer(series) as served:
        opts = options(
            served.url,
            symbol,
            market,
            tmp_path,
            end=DAY + timedelta(days=1),
            commit_rows=500,
            block_bytes=16 * 1024,
        )
        stop = asyncio.Event()
        first = await import_history(
            opts, database_url, stop=stop, on_progress=lambda _: stop.set()
        )
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT kind, state, rows, last_id FROM imports WHERE name = %s", (name,)
            ).fetchone()
        assert first.stopped and row is not None
        kind, state, rows, last_id = row
        assert (kind, state) == (1, "partial") and 0 < rows < 3000
        assert len(stored_aggs(database_url, market)) == rows
        second, events = await run(opts, database_url)
    assert second.ok
    assert any(e.kind is EventKind.RESUMED and str(last_id) in e.message for e in events)
    day = [r for r in archive_rows(series, symbol, market) if r[6] < _ms(DAY + timedelta(days=1))]
    assert stored_aggs(database_url, market) == day


def _ms(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)


async def test_a_monthly_aggtrades_file_and_the_command_line(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """`binprice import SYM --kind aggTrades` plans a whole month as its monthly file (spot:
    never written compressed, whatever --compress-after says) and stores it exactly; its file
    lines and summary name aggregate trades and aggregate ids, not trades."""
    symbol, month = "BTCUSDT", date(2024, 11, 1)
    series = ArchiveMarket.generate([symbol], month, date(2024, 12, 1), trades_per_day=20)
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with ArchiveServer(series) as served:
        code, out, err = await binprice_async(
            env,
            "--database-url",
            database_url,
            "import",
            symbol,
            "--kind",
            "aggTrades",
            "--start",
            month.isoformat(),
            "--end",
            "2024-12-01",
            "--archive-url",
            served.url,
            "--log-format",
            "plain",
        )
        paths = list(served.requests)
    assert code == 0, err
    assert f"/data/spot/monthly/aggTrades/{symbol}/{symbol}-aggTrades-2024-11.zip" in paths
    file = ArchivePath(Market.SPOT, "aggTrades", monthly(symbol, 2024, 11))
    expected = [line.strip().split(",") for line in file_lines(series, file)]
    stored = stored_aggs(database_url, Market.SPOT)
    assert [(str(r[1]), f"{r[2]}", f"{r[3]}", str(r[4]), str(r[5]), str(r[6])) for r in stored] == [
        tuple(fields[:6]) for fields in expected
    ]
    assert len(stored) == 30 * 20
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM trade_blocks").fetchone() == (0,)
        assert conn.execute("SELECT kind, state FROM imports").fetchall() == [(1, "done")]
    assert "aggTrades-2024-11.zip" in out + err
    first, last = stored[0][1], stored[-1][1]
    assert f"aggTrades-2024-11.zip: 600 aggregate trades (600 new), ids {first}..{last}" in err
    assert f"{symbol}: 1 loaded; 600 aggregate trades loaded; last aggregate trade id {last}" in err
    assert " trades loaded" not in err.replace("aggregate trades loaded", "")


async def test_local_aggtrades_zips_are_found_beside_trades_zips(
    database_url: str, tmp_path: Path
) -> None:
    """`import --from DIR --kind aggTrades` takes the folder's `-aggTrades-` zips (checksums
    beside them) and leaves its `-trades-` zips alone, and the other way round."""
    import hashlib
    import zipfile

    market, symbol = Market.USDM, "BTCUSDT"
    series = archive(market, symbol)
    folder = tmp_path / "zips"
    folder.mkdir()
    for kind in ("aggTrades", "trades"):
        key = ArchivePath(market, kind, daily(symbol, DAY))
        path = folder / key.name
        with zipfile.ZipFile(path, "w") as zipped:
            zipped.writestr(key.name.replace(".zip", ".csv"), "".join(file_lines(series, key)))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    local = {"folders": (folder,), "spool_dir": tmp_path / "spool", "market": market}
    aggs, _ = await run(ImportOptions(kind="aggTrades", **local), database_url)  # type: ignore[arg-type]
    assert aggs.ok
    assert [f.name for s in aggs.symbols for f in s.files] == [f"{symbol}-aggTrades-{DAY}.zip"]
    day = [r for r in archive_rows(series, symbol, market) if r[6] < _ms(DAY + timedelta(days=1))]
    assert stored_aggs(database_url, market) == day
    trades, _ = await run(ImportOptions(**local), database_url)  # type: ignore[arg-type]
    assert [f.name for s in trades.symbols for f in s.files] == [f"{symbol}-trades-{DAY}.zip"]
    with psycopg.connect(database_url) as conn:
        # A closed futures month is imported as blocks: count through the view.
        assert conn.execute("SELECT count(*) FROM trades_all").fetchone() == (80,)
