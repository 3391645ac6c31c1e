"""The monthly partitions of trades: migration, uniqueness through every write path, the
DEFAULT partition as a safety net, and making months ahead (migration 0008)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from binprice.db import connect_async, migrations
from binprice.db.copy import (
    COPY_STAGE,
    COPY_TRADES,
    CREATE_STAGE,
    INSERT_FROM_STAGE,
    CopyEncoder,
)
from binprice.db.gaps import verify_gaps
from binprice.db.imports import NEXT_STORED_SQL
from binprice.db.partitions import (
    MONTHS_AHEAD,
    ensure_ahead,
    ensure_partitions,
    list_partitions,
)
from binprice.db.writer import TradeWriter
from binprice.errors import DatabaseBusyError
from binprice.exchange.protocol import WireTrade
from binprice.history import EventKind
from binprice.history._archive import ArchiveFile, Period
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from tests.test_import import expected_text, market_trades, options, run, stored_text
from tests.trades_data import Row, load

JAN = datetime(2025, 1, 1, tzinfo=UTC)
FEB = datetime(2025, 2, 1, tzinfo=UTC)
MAR = datetime(2025, 3, 1, tzinfo=UTC)
APR = datetime(2025, 4, 1, tzinfo=UTC)
MONTH_ROWS = 50


def month_rows(symbol: str, first_id: int, start: datetime, count: int = MONTH_ROWS) -> list[Row]:
    """`count` trades of `symbol`, consecutive ids, an hour apart from `start`."""
    return [
        Row(symbol, first_id + i, Decimal("100.5") + i, Decimal("0.25"), start + timedelta(hours=i))
        for i in range(count)
    ]


def three_months() -> list[Row]:
    """BTCUSDT through January to March 2025 (ids consecutive), ETHUSDT in February only."""
    months = enumerate((JAN, FEB, MAR))
    btc = [r for i, m in months for r in month_rows("BTCUSDT", 1 + MONTH_ROWS * i, m)]
    return btc + month_rows("ETHUSDT", 500, FEB + timedelta(days=3))


def where(url: str) -> dict[tuple[str, int], str]:
    """Each stored trade's partition."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT symbol, trade_id, tableoid::regclass::text FROM trades")
        return {(s, i): str(p) for s, i, p in rows.fetchall()}


def rollup(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM trade_minutes ORDER BY symbol, minute").fetchall()


def month_of(row: Row) -> str:
    return f"trades_{row.timestamp:%Y_%m}"


def test_migration_0008_moves_existing_trades_into_their_months(empty_database_url: str) -> None:
    """A database at 0007 with trades in three months: after the upgrade every row is in its
    month's partition, the rollup is untouched, DEFAULT is empty; the downgrade brings back
    the unpartitioned table with the same rows and its (symbol, trade_id) key."""
    url = empty_database_url
    migrations.upgrade(url, "0007_imports")
    rows = three_months()
    load(url, rows)
    minutes = rollup(url)
    migrations.upgrade(url, "0008_trades_partitioned")
    assert where(url) == {(r.symbol, r.trade_id): month_of(r) for r in rows}
    assert rollup(url) == minutes
    with psycopg.connect(url) as conn:
        kinds = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'trades'").fetchone()
        left = conn.execute("SELECT to_regclass('trades_unpartitioned')").fetchone()
    assert kinds == ("p",) and left == (None,)
    migrations.downgrade(url, "0007_imports")
    assert where(url) == {(r.symbol, r.trade_id): "trades" for r in rows}
    assert rollup(url) == minutes
    with psycopg.connect(url) as conn:
        pk = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'trades'::regclass AND contype = 'p'"
        ).fetchone()
    assert pk == ("PRIMARY KEY (symbol, trade_id)",)


def test_every_partition_carries_the_key_indexes_and_statistics_of_trades(
    database_url: str,
) -> None:
    """Each partition's indexes are attached to the parent's two (so the key and the plans
    hold per partition) and its symbol column has the planner's symbol estimate."""
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, JAN, MAR)
        parts = [p.name for p in list_partitions(conn)]
        attached = conn.execute(
            """
            SELECT c.relname, array_agg(p.relname::text ORDER BY p.relname)
            FROM pg_inherits AS t JOIN pg_class AS c ON c.oid = t.inhrelid
            JOIN pg_index AS x ON x.indrelid = c.oid
            JOIN pg_inherits AS xi ON xi.inhrelid = x.indexrelid
            JOIN pg_class AS p ON p.oid = xi.inhparent
            WHERE t.inhparent = 'trades'::regclass GROUP BY c.relname
            """
        ).fetchall()
        options = conn.execute(
            "SELECT attrelid::regclass::text, attoptions FROM pg_attribute "
            "WHERE attname = 'symbol' AND attrelid IN "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'trades'::regclass)"
        ).fetchall()
    assert {"trades_2025_01", "trades_2025_02", "trades_default"} <= set(parts)
    expected = ["ix_trades_timestamp_symbol", "pk_trades"]
    assert dict(attached) == dict.fromkeys(parts, expected)
    assert dict(options) == {name: ["n_distinct=1400"] for name in parts}


def test_ensure_ahead_makes_this_month_and_the_next_ones_once(database_url: str) -> None:
    """The current month and MONTHS_AHEAD more, across a year end; a second call makes none."""
    now = datetime(2031, 11, 15, 13, 0, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        made = ensure_ahead(conn, now)
        again = ensure_ahead(conn, now + timedelta(days=3))
        bounds = {p.name: (p.start, p.end) for p in list_partitions(conn)}
    assert MONTHS_AHEAD == 2
    assert made == ["trades_2031_11", "trades_2031_12", "trades_2032_01"]
    assert again == []
    assert bounds["trades_2031_12"] == (
        datetime(2031, 12, 1, tzinfo=UTC),
        datetime(2032, 1, 1, tzinfo=UTC),
    )


def test_months_are_utc_whatever_the_session_time_zone(database_url: str) -> None:
    """A session in UTC-10 gets partitions from UTC midnight to UTC midnight."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET TimeZone = 'Pacific/Honolulu'")
        ensure_partitions(conn, JAN, FEB)
        bounds = {p.name: (p.start, p.end) for p in list_partitions(conn)}
    assert bounds["trades_2025_01"] == (JAN, FEB)


def test_rows_of_a_month_without_partition_wait_in_default_and_move_with_it(
    database_url: str,
) -> None:
    """Trades of a month nobody made a partition for are stored (in DEFAULT) and counted by
    the rollup; making the month moves them, rollup unchanged, and a re-delivery still hits
    the primary key there."""
    rows = month_rows("BTCUSDT", 1, FEB)
    load(database_url, rows)
    assert set(where(database_url).values()) == {"trades_default"}
    minutes = rollup(database_url)
    with psycopg.connect(database_url) as conn:
        made = ensure_partitions(conn, JAN, JAN)  # asks for nothing: DEFAULT drives it
    assert made == ["trades_2025_02"]
    assert set(where(database_url).values()) == {"trades_2025_02"}
    assert rollup(database_url) == minutes
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(CREATE_STAGE)
        with cur.copy(COPY_STAGE) as copy:
            copy.write(CopyEncoder().encode([_trade(r) for r in rows[:5]]))
        cur.execute(INSERT_FROM_STAGE)
        assert cur.fetchall() == []
    assert len(where(database_url)) == MONTH_ROWS


def test_concurrent_ensures_make_each_month_once(database_url: str) -> None:
    """A second caller waits on the partition lock while the first makes the months, then
    finds them made; nobody fails on an existing table."""
    results: list[list[str]] = []
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        with first.transaction():
            made = first.execute("SELECT binprice_ensure_trade_partitions(%s, %s)", (JAN, MAR))
            results.append([str(r[0]) for r in made.fetchall()])
            waiter = threading.Thread(
                target=lambda: results.append(ensure_partitions(second, JAN, MAR))
            )
            waiter.start()
            _wait_for_advisory_wait(first, second)
        waiter.join(timeout=60)
    assert results == [["trades_2025_01", "trades_2025_02"], []]


def test_ensure_gives_up_behind_a_long_query_and_makes_nothing(database_url: str) -> None:
    """A query holding trades (DEFAULT included) in an open transaction: making a month would
    queue every new query behind its lock on DEFAULT, so it gives up after its timeout, and a
    later call makes the month."""
    with psycopg.connect(database_url) as reader, psycopg.connect(database_url) as conn:
        reader.execute("SELECT count(*) FROM trades").fetchone()
        with pytest.raises(DatabaseBusyError, match="no partition was made"):
            ensure_partitions(conn, JAN, FEB, lock_timeout=timedelta(milliseconds=50))
        assert "trades_2025_01" not in {p.name for p in list_partitions(conn)}
        reader.rollback()
        assert ensure_partitions(conn, JAN, FEB) == ["trades_2025_01"]


def _wait_for_advisory_wait(
    watcher: psycopg.Connection[Any], waiting: psycopg.Connection[Any]
) -> None:
    """Return once `waiting`'s backend waits for an advisory lock (polls pg_locks)."""
    pid = waiting.info.backend_pid
    for _ in range(100_000):
        row = watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' "
            "AND NOT granted",
            (pid,),
        ).fetchone()
        if row == (1,):
            return
    raise AssertionError("the second ensure never waited for the partition lock")


def _trade(row: Row) -> WireTrade:
    ms = int(row.timestamp.timestamp() * 1000)
    return WireTrade(row.symbol, row.trade_id, row.price, row.quantity, ms, row.is_buyer_maker)


async def test_a_redelivered_trade_is_stored_once_by_the_copy_and_staging_paths(
    database_url: str,
) -> None:
    """The writer's COPY meets the stored trade in its partition (primary key), falls back to
    the staging table and stores only the new ones; across a month boundary too."""
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, JAN, MAR)
    rows = [*month_rows("BTCUSDT", 1, JAN + timedelta(days=30), count=48)]  # Jan 31 → Feb 1
    trades = [_trade(r) for r in rows]
    encoder = CopyEncoder()
    writer = TradeWriter(await connect_async(database_url))
    try:
        assert (await writer.write(encoder.batch(trades[:30])))[0] == {"BTCUSDT": 30}
        again, _ = await writer.write(encoder.batch(trades[20:]))  # ten of them again
    finally:
        await writer.close()
    assert again == {"BTCUSDT": 18}
    stored = where(database_url)
    assert len(stored) == 48
    assert set(stored.values()) == {"trades_2025_01", "trades_2025_02"}
    with (
        psycopg.connect(database_url) as conn,
        conn.cursor() as cur,
        pytest.raises(psycopg.errors.UniqueViolation),
        cur.copy(COPY_TRADES) as copy,
    ):
        copy.write(encoder.encode(trades[47:]))  # the fast path alone refuses it


async def test_an_import_makes_its_months_and_stores_each_trade_once_beside_live_rows(
    database_url: str, tmp_path: Path
) -> None:
    """Archive days across a month end, live-captured rows in the middle: August has no
    partition (its live rows wait in DEFAULT), September has one. The import makes August
    before loading its first file, which moves the waiting rows there; every trade is stored
    once, nothing is left in DEFAULT and the check is clean."""
    market = ArchiveMarket.generate(
        ["BTCUSDT"], date(2024, 8, 30), date(2024, 9, 3), trades_per_day=500
    )
    trades = market_trades(market)
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, datetime(2024, 9, 1, tzinfo=UTC), datetime(2024, 9, 2, tzinfo=UTC))
        with conn.cursor() as cur, cur.copy(COPY_TRADES) as copy:
            copy.write(CopyEncoder().encode(trades[900:1200]))  # Aug 31 → Sep 1
    assert {"trades_default", "trades_2024_09"} == set(where(database_url).values())
    async with ArchiveServer(market) as archive:
        opts = options(archive, date(2024, 8, 30), date(2024, 9, 3), tmp_path, block_bytes=4096)
        summary, events = await run(opts, database_url)
    assert sum(f.inserted for s in summary.symbols for f in s.files) == len(trades) - 300
    assert stored_text(database_url) == expected_text(trades)
    assert {"trades_2024_08", "trades_2024_09"} == set(where(database_url).values())
    made = [e.message for e in events if e.kind is EventKind.PARTITION]
    # Made once, by whichever of August's two files a loader reached first (two loaders race).
    august = ("BTCUSDT-trades-2024-08-30.zip", "BTCUSDT-trades-2024-08-31.zip")
    assert made in ([f"{name}: made partition trades_2024_08"] for name in august)
    assert not [e for e in events if e.kind is EventKind.PARTITION_BUSY]
    with psycopg.connect(database_url) as conn:
        assert verify_gaps(conn).ok


def test_the_import_probe_locks_only_the_files_month(database_url: str) -> None:
    """The loader's probe for stored ids, in a chunk's transaction, is bounded to the file's
    day: it locks that month's partition (and its indexes) only, not DEFAULT or another month,
    which the next file's loader may have to lock to make its month."""
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, JAN, MAR)
    day = ArchiveFile("BTCUSDT", date(2025, 1, 31), Period.DAILY)
    with psycopg.connect(database_url) as conn:  # not autocommit: a transaction, as a chunk's
        conn.execute(NEXT_STORED_SQL, (0, "BTCUSDT", 1, *day.times)).fetchone()  # spot
        locked = conn.execute(
            "SELECT relation::regclass::text FROM pg_locks "
            "WHERE pid = pg_backend_pid() AND locktype = 'relation'"
        ).fetchall()
    partitions = {r[0] for r in locked if r[0].startswith(("trades_20", "trades_default"))}
    assert partitions and {p.startswith("trades_2025_01") for p in partitions} == {True}


def test_the_same_id_at_another_time_is_a_second_row(database_url: str) -> None:
    """The limit of the (symbol, trade_id, timestamp) key, pinned: it cannot refuse one id at
    two times. Binance never reports a trade at two times, so no writer produces this."""
    first = Row("BTCUSDT", 7, Decimal(1), Decimal(1), FEB)
    load(
        database_url,
        [first, Row("BTCUSDT", 7, Decimal(1), Decimal(1), FEB + timedelta(milliseconds=1))],
    )
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM trades WHERE trade_id = 7").fetchone()
    assert count == (2,)
