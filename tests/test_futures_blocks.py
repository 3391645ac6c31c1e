"""`binprice import --market usdm|coinm` of a closed month writes the market's compressed blocks
(`trade_blocks`) straight away, as Spot's closed months do (#19, "History that fits" for every
market): the blocks decode to exactly the archive's rows, the rollup equals the one the same
files make as rows, and the month's catalog, `imports` rows and checks are the market's own."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

import binprice
from binprice.db.gaps import verify_gaps
from binprice.history import FileStatus, ImportOptions
from binprice.history._archive import daily
from binprice.markets import Market
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from tests.test_futures_completeness import SYMBOL
from tests.test_import import LATER, TextRow, run, statuses
from tests.test_import_blocks import rows_url  # noqa: F401 - the fixture

#: Two days at the end of a month closed long before `LATER`.
DAYS = (date(2025, 3, 30), date(2025, 4, 1))
PER_DAY = 3000


def _text(url: str, market: Market) -> list[TextRow]:
    """`market`'s stored trades, rows and decoded blocks (`trades_all`), as text."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, trade_id, price::text, quantity::text, "
            "floor(extract(epoch FROM timestamp) * 1000)::bigint, is_buyer_maker "
            "FROM trades_all WHERE market = %s ORDER BY 1, 2",
            (market.number,),
        ).fetchall()
    return [(s, i, p, q, int(t), m) for s, i, p, q, t, m in rows]


def _counts(url: str, market: Market) -> tuple[int, int]:
    """(`market`'s rows in `trades`, its trades in `trade_blocks`)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM trades WHERE market = %(m)s), "
            "(SELECT coalesce(sum(trades), 0) FROM trade_blocks WHERE market = %(m)s)",
            {"m": market.number},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _rollup(url: str, market: Market) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT symbol, minute, trades, volume::text, notional::text, high::text, low::text, "
            "first_id, last_id, open::text, close::text FROM trade_minutes "
            "WHERE market = %s ORDER BY symbol, minute",
            (market.number,),
        ).fetchall()


def _options(
    server: ArchiveServer, market: Market, tmp_path: Path, end: date, after: str | None
) -> ImportOptions:
    """The days from `DAYS[0]` to `end` of the market's symbol; a closed month as blocks with
    `after` ("3d"), as rows with None."""
    return ImportOptions(
        (SYMBOL[market],),
        start=DAYS[0],
        end=end,
        archive_url=server.url,
        spool_dir=tmp_path / str(after),
        today=LATER,
        compress_after=after,
        market=market,
    )


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM], ids=["usdm", "coinm"])
async def test_a_closed_futures_month_is_imported_as_the_markets_blocks_equal_to_the_archive(
    market: Market,
    database_url: str,
    rows_url: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """Two daily files of a closed month (header rows, true/false, the contract's decimals):
    no rows, blocks of the market that decode to exactly the archive's trades, the rollup the
    same files make as rows, a catalog row and `done` imports of the market; a second run
    stores nothing twice; spot stays empty; `latest` answers from the blocks."""
    symbol = SYMBOL[market]
    archive = ArchiveMarket.generate([symbol], *DAYS, trades_per_day=PER_DAY, market=market)
    files = [daily(symbol, date(2025, 3, 30 + i), market) for i in range(2)]
    served = sorted(
        (t.symbol, t.trade_id, t.price, t.quantity, t.time_ms, t.is_buyer_maker)
        for f in files
        for t in archive.trades(f)
    )
    assert len(served) == 2 * PER_DAY
    async with ArchiveServer(archive) as server:
        for url, after in ((rows_url, None), (database_url, "3d"), (database_url, "3d")):
            summary, _ = await run(_options(server, market, tmp_path, DAYS[1], after), url)
            assert summary.ok
    # The second run into blocks found every file imported already.
    assert set(statuses(summary).values()) == {FileStatus.SKIPPED}
    assert _counts(rows_url, market) == (2 * PER_DAY, 0)
    assert _counts(database_url, market) == (0, 2 * PER_DAY)
    # The row import keeps the CSV's text verbatim: the blocks give back the same text.
    stored = _text(database_url, market)
    assert stored == _text(rows_url, market)
    assert [(s, i, Decimal(p), Decimal(q), t, m) for s, i, p, q, t, m in stored] == served
    assert _rollup(database_url, market) == _rollup(rows_url, market)
    assert _text(database_url, Market.SPOT) == [] and _counts(database_url, Market.SPOT) == (0, 0)
    with psycopg.connect(database_url) as conn:
        months = conn.execute("SELECT market, month FROM compressed_months").fetchall()
        done = conn.execute("SELECT market, state FROM imports ORDER BY name").fetchall()
        assert verify_gaps(conn, market=market).ok
    assert [(m, month.date()) for m, month in months] == [(market.number, date(2025, 3, 1))]
    assert done == [(market.number, "done")] * 2
    with binprice.connect(database_url) as store:
        (last,) = store.latest([symbol], market=market.value)
    newest = served[-1]
    assert (last.trade_id, last.price) == (newest[1], newest[2])
    assert last.timestamp == datetime.fromtimestamp(newest[4] / 1000, UTC)


async def test_a_futures_day_stored_as_rows_is_not_stored_again_by_the_blocks_import(
    database_url: str, tmp_path: Path
) -> None:
    """COIN-M's first day is in as rows no import recorded (as live capture leaves them);
    the closed month's import into blocks then takes the merge path for that day: every trade
    of the archive once, that day's rows left as rows, the other day as blocks."""
    market, symbol = Market.COINM, SYMBOL[Market.COINM]
    archive = ArchiveMarket.generate([symbol], *DAYS, trades_per_day=PER_DAY, market=market)
    async with ArchiveServer(archive) as server:
        for end, after in ((date(2025, 3, 31), None), (DAYS[1], "3d")):
            summary, _ = await run(_options(server, market, tmp_path, end, after), database_url)
            assert summary.ok
            with psycopg.connect(database_url) as conn:  # rows no import recorded, as live ones
                conn.execute("DELETE FROM imports")
    assert set(statuses(summary).values()) == {FileStatus.LOADED}
    assert _counts(database_url, market) == (PER_DAY, PER_DAY)
    stored = [
        (s, i, Decimal(p), Decimal(q), t, m) for s, i, p, q, t, m in _text(database_url, market)
    ]
    files = [daily(symbol, date(2025, 3, 30 + i), market) for i in range(2)]
    assert stored == sorted(
        (t.symbol, t.trade_id, t.price, t.quantity, t.time_ms, t.is_buyer_maker)
        for f in files
        for t in archive.trades(f)
    )
    with psycopg.connect(database_url) as conn:
        assert verify_gaps(conn, market=market).ok
