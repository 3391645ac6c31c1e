"""The closed days of a month still being captured, compressed into blocks while live writers
go on (issue #18 item 4; docs/storage-design.md, "Live month: closed days in blocks").

`db compress` swaps a closed month whole (`binprice.db.compress`: a SHARE lock, TRUNCATE). The
live month cannot be locked for minutes, so its days before a cut (the start of a UTC day)
become blocks one day at a time, each in a **REPEATABLE READ** transaction:

1. the first time, a short transaction of its own makes the month's partition of trade_blocks
   (empty, attached) under the partition advisory lock;
2. the day's transaction reads the day's rows of every (market, symbol), and the blocks the day
   already has (an earlier run's): rows whose id is not in the blocks join them, the day is
   re-encoded and its old blocks replaced, the rows' blocks COPYed in;
3. `DELETE` of the day's rows: it deletes exactly the rows of the transaction's snapshot, the
   rows that were encoded (a row committed after the snapshot is invisible to it and stays a
   row; readers read rows and blocks, and the next run merges it). The count deleted must be
   the count read;
4. a day that had blocks and rows gets its rollup minutes recomputed from its blocks (a row
   that repeats a block's trade was counted twice by the writer);
5. the check of `db compress` on the day: the per-minute aggregate of the day's blocks equals
   `trade_minutes`, both ways, and the blocks hold the rollup's count and the rows' and old
   blocks' count; any difference raises and rolls back;
6. the month's `compressed_months` rows (from then on every reader reads its rows and blocks),
   COMMIT.

Live writers are never waited for and never wait, except a writer that re-inserts a row this
transaction deletes (its unique check waits for the COMMIT; that trade then stays a row and is
merged next time). A writer that changes a rollup minute this transaction recomputes (step 4)
after the snapshot makes the DELETE fail with a serialization failure: the day is tried again
(`SERIALIZATION_RETRIES`). The rollup is read, never assumed to be kept by a trigger: any
writer that changes rows and their rollup minutes in one transaction keeps the check exact.

A SIGKILL of binprice or of PostgreSQL before a day's COMMIT is durable leaves that day's rows
and no new blocks; after it, the blocks and no rows: each trade answered by one or the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from binprice.compressed.codec import CodecTrade, decode_block, encode_blocks, is_dense
from binprice.db.blocks import (
    block_month_name,
    ensure_block_month,
    from_ms,
    read_blocks,
    write_blocks,
)
from binprice.db.compress import (
    _CHECK_SQL,
    _DELETE_DAY_SQL,
    _STAGING,
    _STAGING_SQL,
    COMPRESS_LOCK_TIMEOUT,
    DAY,
    DAY_MINUTES,
    ESTIMATED_BYTES_PER_TRADE,
    PARTITION_LOCK_KEY,
    CompressionCheckError,
    CompressResult,
    DayCompression,
    MonthCompression,
    _day_rows,
    _recompute_rollup,
    _record,
    _rollup_trades,
    _size,
    compress,
    plan_compress,
)
from binprice.db.partitions import list_partitions, month_start
from binprice.errors import AbortedError, DatabaseBusyError

__all__ = [
    "SERIALIZATION_RETRIES",
    "compress_day",
    "compress_days",
    "compress_with_days",
    "day_cut",
    "plan_days",
    "plan_with_days",
]

Connection = psycopg.Connection[Any]

#: How often a day is tried again after a serialization failure (a live writer changed a
#: rollup minute the day recomputes) before the run gives up on it.
SERIALIZATION_RETRIES = 5


def day_cut(moment: datetime) -> datetime:
    """The start of `moment`'s UTC day: the days before it are the ones compressed."""
    utc = moment.astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


_DAY_HOLDS_ROWS_SQL = """
SELECT EXISTS (SELECT FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s)"""
_DAY_COUNT_SQL = """SELECT count(*) FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s"""


def _row_days(
    conn: Connection, before: datetime, months_before: datetime
) -> list[tuple[str, datetime]]:
    """(row partition, day) for every UTC day before `before` that holds rows, in months that
    end after `months_before` (the months before it are compressed whole): one probe of the
    seed index per day."""
    days = []
    for part in list_partitions(conn):
        if part.start is None or part.end is None or part.start >= before:
            continue
        if part.end <= months_before:
            continue
        query = sql.SQL(_DAY_HOLDS_ROWS_SQL).format(sql.Identifier(part.name))
        day = part.start
        while day < min(part.end, before):
            if conn.execute(query, (day, day + DAY)).fetchone()[0]:  # type: ignore[index]
                days.append((part.name, day))
            day += DAY
    return days


def plan_days(
    conn: Connection, before: datetime, *, months_before: datetime
) -> tuple[DayCompression, ...]:
    """The days `compress_days` would compress now, with their rows counted; changes nothing."""
    cut = day_cut(before)
    planned = []
    for table, day in _row_days(conn, cut, months_before):
        query = sql.SQL(_DAY_COUNT_SQL).format(sql.Identifier(table))
        rows = int(conn.execute(query, (day, day + DAY)).fetchone()[0])  # type: ignore[index]
        action = "merge" if _day_has_blocks(conn, day) else "compress"
        estimate = int(rows * ESTIMATED_BYTES_PER_TRADE)
        planned.append(DayCompression(day, action, rows, bytes=estimate))
    return tuple(planned)


def compress_days(
    conn: Connection,
    before: datetime,
    *,
    months_before: datetime,
    lock_timeout: timedelta = COMPRESS_LOCK_TIMEOUT,
    progress: Callable[[DayCompression], None] | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> tuple[DayCompression, ...]:
    """Compress every UTC day before `day_cut(before)` that holds rows, in the months ending
    after `months_before`, oldest first, one transaction each (the module's docstring).
    `stopping` is asked between symbols: once true, the day under way rolls back and
    AbortedError is raised (the days done stay done)."""
    done = []
    for _table, day in _row_days(conn, day_cut(before), months_before):
        result = compress_day(conn, day, lock_timeout=lock_timeout, stopping=stopping)
        done.append(result)
        if progress is not None:
            progress(result)
    if done:
        _vacuum_rows(conn, {month_start(d.day) for d in done})
    return tuple(done)


def compress_day(
    conn: Connection,
    day: datetime,
    *,
    lock_timeout: timedelta = COMPRESS_LOCK_TIMEOUT,
    stopping: Callable[[], bool] = lambda: False,
    retries: int = SERIALIZATION_RETRIES,
) -> DayCompression:
    """Compress one UTC day's rows into blocks (merging them into the day's blocks if it has
    some) in one REPEATABLE READ transaction, tried again after a serialization failure.
    CompressionCheckError (nothing changed) when the blocks would not answer as the rows;
    DatabaseBusyError when a lock is not granted in time or the day keeps conflicting."""
    began = time.perf_counter()
    month = month_start(day)
    timeout_ms = int(lock_timeout / timedelta(milliseconds=1))
    try:
        _ensure_month(conn, month, timeout_ms)
        for attempt in range(retries + 1):
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    conn.execute(f"SET LOCAL lock_timeout = {timeout_ms}")
                    action, trades, blocks, size = _swap_day(conn, day, stopping)
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                continue
            seconds = time.perf_counter() - began
            return DayCompression(day, action, trades, blocks, size, seconds, attempt)
    except psycopg.errors.LockNotAvailable:
        raise DatabaseBusyError(
            f"the rows of {day:%Y-%m-%d} stayed locked by other sessions for "
            f"{lock_timeout.total_seconds():g} s; nothing of that day was compressed; try again"
        ) from None
    raise DatabaseBusyError(
        f"{day:%Y-%m-%d} conflicted with live writers {retries + 1} times; nothing of that day "
        "was compressed; try again"
    )


def _ensure_month(conn: Connection, month: datetime, timeout_ms: int) -> None:
    """The month's partition of trade_blocks, made empty and attached if missing, in a short
    transaction of its own (no month is made or pruned meanwhile)."""
    exists = conn.execute("SELECT to_regclass(%s)", (block_month_name(month),)).fetchone()
    if exists is not None and exists[0] is not None:
        return
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = {timeout_ms}")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
        ensure_block_month(conn, month)


_DAY_SYMBOLS_SQL = """
SELECT market, symbol FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s
GROUP BY market, symbol ORDER BY market, symbol"""
_DELETE_ROWS_SQL = 'DELETE FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s'
_DAY_BLOCKS_SQL = "SELECT EXISTS (SELECT FROM trade_blocks WHERE first_ts >= %s AND first_ts < %s)"
_DAY_SIZE_SQL = """
SELECT count(*), coalesce(sum(pg_column_size(b.*)), 0) FROM trade_blocks AS b
WHERE first_ts >= %s AND first_ts < %s"""


def _day_has_blocks(conn: Connection, day: datetime) -> bool:
    return bool(conn.execute(_DAY_BLOCKS_SQL, (day, day + DAY)).fetchone()[0])  # type: ignore[index]


def _swap_day(
    conn: Connection, day: datetime, stopping: Callable[[], bool]
) -> tuple[str, int, int, int]:
    """The day's rows into blocks, inside the caller's REPEATABLE READ transaction; the action,
    the rows, and the day's blocks and their bytes afterwards."""
    month = month_start(day)
    rows_table = f"trades_{month:%Y_%m}"
    merging = _day_has_blocks(conn, day)
    conn.execute(_STAGING_SQL)
    read = held = 0
    doubled: list[tuple[int, str]] = []
    query = sql.SQL(_DAY_SYMBOLS_SQL).format(sql.Identifier(rows_table))
    for market, symbol in conn.execute(query, (day, day + DAY)).fetchall():
        if stopping():
            raise AbortedError(f"compressing {day:%Y-%m-%d} was stopped; that day is unchanged")
        rows = _day_rows(conn, rows_table, market, symbol, day)
        old = _old_trades(conn, market, symbol, day)
        have = {t[0] for t in old}
        merged = old + [t for t in rows if t[0] not in have]
        read += len(rows)
        held += len(merged)
        if len(merged) < len(old) + len(rows):  # a row repeated a block's trade
            doubled.append((market, symbol))
        blocks = encode_blocks(
            symbol, merged, dense=is_dense(len(merged), DAY_MINUTES), market=market
        )
        write_blocks(conn, blocks, _STAGING)
        if old:
            conn.execute(_DELETE_DAY_SQL, (market, symbol, day, day + DAY))
    conn.execute(
        sql.SQL(
            "INSERT INTO trade_blocks SELECT * FROM {} ORDER BY market, symbol, first_ts, first_id"
        ).format(sql.Identifier(_STAGING))
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(_STAGING)))
    deleted = conn.execute(
        sql.SQL(_DELETE_ROWS_SQL).format(sql.Identifier(rows_table)), (day, day + DAY)
    ).rowcount
    if deleted != read:  # one snapshot: cannot differ, unless a writer of this day serialized
        raise CompressionCheckError(
            f"{day:%Y-%m-%d}: {read} rows were encoded but {deleted} deleted; nothing was changed"
        )
    for market, symbol in doubled:
        _recompute_rollup(conn, market, symbol, day)
    _check_day(conn, day, held)
    blocks, size = conn.execute(_DAY_SIZE_SQL, (day, day + DAY)).fetchone()  # type: ignore[misc]
    table = block_month_name(month)
    _record(conn, month, _size(conn, table), _size(conn, rows_table))
    return ("merge" if merging else "compress"), read, int(blocks), int(size)


def _old_trades(conn: Connection, market: int, symbol: str, day: datetime) -> list[CodecTrade]:
    """The trades of (market, symbol)'s blocks that start in `day` (an earlier run's)."""
    return [
        t
        for b in read_blocks(conn, symbol, day, day + DAY, market=market)
        if day <= from_ms(b.first_ms) < day + DAY
        for t in decode_block(b)
    ]


def _check_day(conn: Connection, day: datetime, held: int) -> None:
    """Raise CompressionCheckError unless the day's blocks answer as its rollup: every minute's
    aggregate both ways, and as many trades as the rollup counts and as were encoded."""
    query = _CHECK_SQL.format(table="trade_blocks", symbol_filter="")
    params = {"lo": day, "hi": day + DAY}
    missing, extra, in_blocks = conn.execute(query, params).fetchone()  # type: ignore[misc]
    counted = _rollup_trades(conn, day, day + DAY)
    if missing or extra or int(in_blocks) != counted or held > int(in_blocks):
        # `held` counts the symbols of this run; the day's other symbols were compressed before
        raise CompressionCheckError(
            f"the blocks built for {day:%Y-%m-%d} differ from its rows: {missing} minute(s) of "
            f"the blocks not in the rollup, {extra} of the rollup not in the blocks, "
            f"{in_blocks} trades in blocks for {counted} in the rollup; nothing was changed "
            "(check the day with `binprice gaps --verify`)"
        )


def _vacuum_rows(conn: Connection, months: set[datetime]) -> None:
    """VACUUM the row partitions whose days were deleted, so the live writers reuse the space
    (it takes no lock a writer waits for)."""
    for month in sorted(months):
        conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(f"trades_{month:%Y_%m}")))


def plan_with_days(conn: Connection, before: datetime, days_before: datetime) -> CompressResult:
    """`plan_compress`, and the days before `days_before` of the months it leaves."""
    months = plan_compress(conn, before)
    cut = day_cut(days_before)
    days = plan_days(conn, cut, months_before=before)
    return CompressResult(before, months.months, done=False, days_before=cut, days=days)


def compress_with_days(
    conn: Connection,
    before: datetime,
    days_before: datetime,
    *,
    lock_timeout: timedelta = COMPRESS_LOCK_TIMEOUT,
    progress: Callable[[MonthCompression | DayCompression], None] | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> CompressResult:
    """`compress` (the closed months before `before`, whole), then `compress_days` (the days
    before `days_before` of the months still holding rows)."""
    months = compress(conn, before, lock_timeout=lock_timeout, progress=progress, stopping=stopping)
    cut = day_cut(days_before)
    days = compress_days(
        conn,
        cut,
        months_before=before,
        lock_timeout=lock_timeout,
        progress=progress,
        stopping=stopping,
    )
    return CompressResult(before, months.months, done=True, days_before=cut, days=days)
