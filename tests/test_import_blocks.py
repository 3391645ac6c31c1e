"""`binprice import` of a closed month writes blocks (`trade_blocks`) instead of rows.

Every check compares with the same files imported as rows (`compress_after=None`) into a second
database: the decoded blocks equal the rows trade by trade (text of every field), and the
per-minute rollup `trade_minutes` is equal column by column, as text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from binprice.compressed.codec import encode_blocks
from binprice.compressed.columns import encode_columns
from binprice.db.copy import COPY_TRADES, CopyEncoder
from binprice.events import EventKind
from binprice.history import FileStatus, ImportOptions, import_history
from binprice.history._columns import to_columns
from binprice.history._csv import CsvDecoder
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket, csv_line
from tests.conftest import TEMPLATE_DB, _scratch_database
from tests.test_import import (
    LATER,
    SYMBOL,
    expected_text,
    imports,
    market_trades,
    options,
    run,
    statuses,
    stored_text,
)

#: Busy enough for minute blocks (the codec's rule: 64 trades a minute, 92,160 a day).
DENSE_DAY = 100_000
ROLLUP_SQL = """
SELECT symbol, minute, trades, volume::text, notional::text, high::text, low::text,
       first_id, last_id, open::text, close::text
FROM trade_minutes ORDER BY symbol, minute"""


@pytest.fixture
def rows_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A second fresh database, for the same files imported as rows."""
    yield from _scratch_database(pg_admin_url, TEMPLATE_DB)


def rollup(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(ROLLUP_SQL).fetchall()


def counts(url: str) -> tuple[int, int]:
    """(rows in `trades`, trades in `trade_blocks`)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM trades), "
            "(SELECT coalesce(sum(trades), 0) FROM trade_blocks)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_encode_columns_gives_the_codecs_blocks() -> None:
    """The import's fast encoder makes exactly `encode_blocks`' blocks: minute and 1,000-trade
    blocks, a hole in the ids, a change of decimals and a price jump beyond int4 mid-minute."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 8, 1), date(2024, 8, 2), trades_per_day=6000
    )
    lines = [csv_line(t, micros=False) for t in market_trades(market)]
    del lines[100:103]  # a hole in the ids
    tid, _price, *rest = lines[2000].split(",")
    lines[2000] = ",".join([tid, "987654321.5", *rest])  # one decimal, a jump beyond int4
    decoder = CsvDecoder(SYMBOL, fields=True)
    fields = decoder.feed("".join(lines).encode()).fields
    assert fields is not None
    parts = to_columns(fields)
    assert len(parts) == 3  # the changed price's decimals make a run of its own
    for dense in (True, False):
        fast = [b for part in parts for b in encode_columns(SYMBOL, part, dense=dense)]
        slow = [b for part in parts for b in encode_blocks(SYMBOL, part.trades(), dense=dense)]
        assert fast == slow
        assert len(fast) > len(parts)


async def test_a_closed_month_is_stored_as_blocks_equal_to_rows(
    database_url: str, rows_url: str, tmp_path: Path
) -> None:
    """A busy day (minute blocks) and a quiet one (1,000-trade blocks) of a closed month: no
    rows, blocks that decode to the row import's trades, the same rollup, one catalog row."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 5, 30), date(2024, 5, 31), trades_per_day=DENSE_DAY
    )
    quiet = ArchiveMarket.generate(
        ["ETHUSDT"], date(2024, 5, 30), date(2024, 5, 31), trades_per_day=3000
    )
    market.records.update(quiet.records)
    async with ArchiveServer(market) as archive:
        for url, after in ((rows_url, None), (database_url, "3d")):
            opts = ImportOptions(
                (SYMBOL, "ETHUSDT"),
                start=date(2024, 5, 30),
                end=date(2024, 5, 31),
                archive_url=archive.url,
                spool_dir=tmp_path / str(after),
                today=LATER,
                compress_after=after,
            )
            summary, _ = await run(opts, url)
            assert summary.ok
    assert counts(rows_url) == (DENSE_DAY + 3000, 0)
    assert counts(database_url) == (0, DENSE_DAY + 3000)
    assert stored_text(database_url) == stored_text(rows_url)
    assert stored_text(database_url, SYMBOL) == expected_text(market_trades(market))
    assert rollup(database_url) == rollup(rows_url)
    with psycopg.connect(database_url) as conn:
        shape = conn.execute(
            "SELECT symbol, count(*), min(trades), max(trades) FROM trade_blocks "
            "WHERE symbol = 'ETHUSDT' GROUP BY 1"
        ).fetchall()
        minutes = conn.execute(
            "SELECT count(*), count(DISTINCT date_trunc('minute', first_ts)) FROM trade_blocks "
            "WHERE symbol = 'BTCUSDT'"
        ).fetchone()
        catalog = conn.execute("SELECT month::date, trades FROM compressed_months").fetchall()
    assert minutes == (1440, 1440)  # BTCUSDT: one block a minute
    assert shape == [("ETHUSDT", 3, 1000, 1000)]
    assert catalog == [(date(2024, 5, 1), DENSE_DAY + 3000)]


async def test_a_month_not_closed_long_enough_is_stored_as_rows(
    database_url: str, tmp_path: Path
) -> None:
    """A month that ended fewer than `compress_after` days ago stays rows."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 5, 30), date(2024, 5, 31), trades_per_day=50
    )
    async with ArchiveServer(market) as archive:
        opts = options(
            archive,
            date(2024, 5, 30),
            date(2024, 5, 31),
            tmp_path,
            today=date(2024, 6, 3),
            compress_after="3d",
        )
        summary, _ = await run(opts, database_url)
    assert summary.ok and counts(database_url) == (50, 0)


async def test_a_stop_mid_month_resumes_into_blocks_equal_to_rows(
    database_url: str, rows_url: str, tmp_path: Path
) -> None:
    """A monthly file stopped after its first chunk: `partial` with whole blocks committed;
    the next run resumes after its last id; then trades and rollup equal a row import's."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 2, 1), date(2024, 3, 1), trades_per_day=200
    )
    name = f"{SYMBOL}-trades-2024-02.zip"
    async with ArchiveServer(market) as archive:
        rows_opts = options(
            archive, date(2024, 2, 1), date(2024, 3, 1), tmp_path / "rows", compress_after=None
        )
        assert (await run(rows_opts, rows_url))[0].ok
        opts = options(
            archive,
            date(2024, 2, 1),
            date(2024, 3, 1),
            tmp_path / "blocks",
            commit_rows=1500,
            block_bytes=8192,
        )
        stop = asyncio.Event()
        first = await import_history(
            opts, database_url, stop=stop, on_progress=lambda p: p.rows and stop.set()
        )
        state, rows, inserted, first_id, last_id, _sha = imports(database_url)[name]
        assert first.stopped and statuses(first)[name] is FileStatus.INTERRUPTED
        assert state == "partial" and 0 < rows < 200 * 29 and rows == inserted
        assert last_id - first_id + 1 == rows == counts(database_url)[1]
        second, events = await run(opts, database_url)
    assert any(e.kind is EventKind.RESUMED for e in events)
    assert second.ok and imports(database_url)[name][:2] == ("done", 200 * 29)
    assert counts(database_url) == (0, 200 * 29)
    assert stored_text(database_url) == stored_text(rows_url)
    assert rollup(database_url) == rollup(rows_url)


async def test_a_republished_day_adds_only_its_new_trades_to_the_blocks(
    database_url: str, rows_url: str, tmp_path: Path
) -> None:
    """A day imported with a hole, then republished whole: the missing trades merge into the
    day's blocks, none twice; trades and rollup equal the whole day imported as rows."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 4, 1), date(2024, 4, 2), trades_per_day=500
    )
    trades = market_trades(market)
    holed = ArchiveMarket.from_trades({SYMBOL: trades[:200] + trades[260:]})
    for url, after in ((rows_url, None), (database_url, "3d")):
        for version in (holed, market):
            async with ArchiveServer(version) as archive:
                opts = options(
                    archive,
                    date(2024, 4, 1),
                    date(2024, 4, 2),
                    tmp_path / str(after),
                    compress_after=after,
                )
                summary, _ = await run(opts, url)
            assert statuses(summary) == {f"{SYMBOL}-trades-2024-04-01.zip": FileStatus.LOADED}
    assert imports(database_url)[f"{SYMBOL}-trades-2024-04-01.zip"][1:3] == (500, 60)
    assert counts(database_url) == (0, 500)
    assert stored_text(database_url) == expected_text(trades) == stored_text(rows_url)
    assert rollup(database_url) == rollup(rows_url)


async def test_rows_already_in_a_closed_month_stay_rows_and_are_not_stored_twice(
    database_url: str, rows_url: str, tmp_path: Path
) -> None:
    """Live capture stored part of the day as rows: the import writes the rest as blocks
    around them; every trade once, the rollup as a row import's."""
    market = ArchiveMarket.generate(
        [SYMBOL], date(2024, 9, 1), date(2024, 9, 2), trades_per_day=2000
    )
    trades = market_trades(market)
    for url, after in ((rows_url, None), (database_url, "3d")):
        with psycopg.connect(url) as conn:
            conn.execute("SELECT binprice_ensure_trade_partitions('2024-09-01', '2024-10-01')")
            with conn.cursor() as cur, cur.copy(COPY_TRADES) as copy:
                copy.write(CopyEncoder().encode(trades[700:900]))
        async with ArchiveServer(market) as archive:
            opts = options(
                archive,
                date(2024, 9, 1),
                date(2024, 9, 2),
                tmp_path / str(after),
                block_bytes=8192,
                compress_after=after,
            )
            summary, _ = await run(opts, url)
        [result] = summary.symbols[0].files
        assert (result.rows, result.inserted) == (2000, 1800)
    assert counts(database_url) == (200, 1800)
    assert stored_text(database_url) == expected_text(trades) == stored_text(rows_url)
    assert rollup(database_url) == rollup(rows_url)


def _reference_columns(prices: list[str], qtys: list[str]) -> list[tuple[Any, ...]]:
    """Each run of equal decimals as (prices, quantities, their decimals), value by value."""
    out: list[tuple[Any, ...]] = []
    for price, qty in zip(prices, qtys, strict=True):
        places = tuple(len(v) - v.find(".") - 1 if "." in v else 0 for v in (price, qty))
        values = (int(price.replace(".", "")), int(qty.replace(".", "")))
        if out and out[-1][2] == places:
            out[-1][0].append(values[0])
            out[-1][1].append(values[1])
        else:
            out.append(([values[0]], [values[1]], places))
    return out


@pytest.mark.parametrize(
    ("prices", "qtys"),
    [
        (["64647.57000000", "64647.55000000", "0.00000001"], ["0.01873000"] * 3),
        (["5", "17", "123456789"], ["2", "3", "4"]),
        (["5", "1.50000000", "2.50000000"], ["1.0", "2.0", "3.0"]),
        (["1.50000000", "123456789", "2.5"], ["1.00"] * 3),
        (["12.5", "1.25", "12.5"], ["7"] * 3),
    ],
    ids=["binance", "integers", "short-first", "no-point-same-length", "point-moves"],
)
def test_to_columns_scales_each_run_of_equal_decimals(prices: list[str], qtys: list[str]) -> None:
    """The column-at-once path gives the integers and decimals of the value-by-value one,
    including where a value has no point, or its point elsewhere, at the first one's length."""
    fields = [
        (str(i), p, q, "1735689600", "000", "True")
        for i, (p, q) in enumerate(zip(prices, qtys, strict=True))
    ]
    found = [(c.prices, c.qtys, (c.price_digits, c.qty_digits)) for c in to_columns(fields)]
    assert found == _reference_columns(prices, qtys)
