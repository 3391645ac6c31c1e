"""`binprice db compress`: a closed month of `trades` rows becomes blocks of `trade_blocks`,
in one transaction per month (docs/storage-design.md, "SIGKILL safety").

**The swap**, all in one transaction:

1. the partition advisory lock (no month is made or pruned meanwhile), then `LOCK` the month's
   row partition `IN SHARE MODE`: late writers of that month wait, readers go on;
2. per symbol and UTC day (dense or sparse by the day's count), read the rows, encode
   them (`binprice.compressed.codec`) and COPY the blocks into a new plain table shaped as the
   month's partition of trade_blocks;
3. check in SQL: the blocks hold as many trades as the rows, and the per-minute aggregate of
   the decoded blocks (count, first and last id, volume, notional, high, low, open, close)
   equals `trade_minutes` for the month, both ways; any difference raises and rolls back;
4. `TRUNCATE` the row partition (it stays attached and empty: it is where late writes of the
   month land; a TRUNCATE of a partition fires no trigger of `trades`, so the rollup keeps the
   month) and `ATTACH` the new table as the month's partition of trade_blocks (its CHECK spares
   the validation scan); record the month in `compressed_months`;
5. COMMIT. A SIGKILL of binprice or of PostgreSQL before the commit record is durable leaves
   the rows and no blocks; after it, the blocks and no rows.

**Late writes** (a backfill, `gaps --repair`, an import into a compressed month) land in the
month's empty row partition, and every reader reads rows and blocks. The next `db compress`
merges them: for each symbol and UTC day they touch, the day's blocks are decoded, the rows
added (an id already in the blocks is the same trade delivered twice: the block's copy is
kept), the day re-encoded and its blocks replaced; the rollup minutes of those days are then
recomputed from the blocks (a duplicate row was counted twice by the insert trigger); then the
rows are truncated. The same checks run before the commit.

**Markets.** A month's row partition holds every market's rows: its blocks are encoded per
(market, symbol, day), checked per (market, symbol, minute), and `compressed_months` gets a row
per market. A market whose first rows land in a month compressed without it is merged as late
rows are (its days have no old blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from binprice.compressed.codec import CodecTrade, decode_block, encode_blocks, is_dense
from binprice.db.blocks import (
    attach_month,
    block_month_name,
    from_ms,
    new_month_table,
    read_blocks,
    write_blocks,
)
from binprice.db.partitions import (
    add_months,
    default_months,
    ensure_partitions,
    list_partitions,
)
from binprice.errors import AbortedError, BinpriceError, DatabaseBusyError

__all__ = [
    "COMPRESS_LOCK_TIMEOUT",
    "ESTIMATED_BYTES_PER_TRADE",
    "CompressResult",
    "CompressionCheckError",
    "DayCompression",
    "MonthCompression",
    "compress",
    "compress_month",
    "compressed_months",
    "plan_compress",
]

Connection = psycopg.Connection[Any]

#: How long compressing a month waits for its locks (the month's rows, then the swap) before
#: giving up with nothing changed.
COMPRESS_LOCK_TIMEOUT = timedelta(seconds=5)
#: A dry run's estimate: docs/storage-design.md measured 5.7 bytes a trade for a busy
#: BTCUSDT day in minute blocks and ~10 for a rare symbol's 1,000-trade blocks.
ESTIMATED_BYTES_PER_TRADE = 6.0
#: pg_advisory_xact_lock key of partition management (migration 0008's).
PARTITION_LOCK_KEY = 0x62696E7070617274
DAY = timedelta(days=1)
DAY_MINUTES = 1440
_MS_EXPR = '(extract(epoch FROM "timestamp") * 1000)::int8'


class CompressionCheckError(BinpriceError):
    """The blocks built for a month do not answer exactly as its rows and rollup (nothing was
    changed: the transaction rolled back)."""


@dataclass(frozen=True, slots=True)
class MonthCompression:
    """One month `db compress` compressed (or, in a plan, would)."""

    month: datetime
    #: "compress": rows become blocks; "merge": late rows of a compressed month join its blocks.
    action: str
    #: Rows compressed (or merged).
    trades: int
    #: The row partition's size before (heap, TOAST, indexes).
    row_bytes: int
    #: The month's blocks afterwards (heap, TOAST, index); estimated in a plan.
    bytes: int
    blocks: int = 0
    seconds: float = 0.0

    @property
    def bytes_per_trade(self) -> float | None:
        return self.bytes / self.trades if self.trades else None


@dataclass(frozen=True, slots=True)
class DayCompression:
    """One UTC day of a month still holding rows (the live month) that `db compress
    --days-before` compressed (or, in a plan, would); see `binprice.db.compress_days`."""

    day: datetime
    #: "compress": the day's rows become blocks; "merge": they join the day's blocks.
    action: str
    #: Rows read (and deleted) from the day.
    trades: int
    #: The day's blocks afterwards (0 in a plan).
    blocks: int = 0
    #: Estimated in a plan; otherwise the day's blocks' own bytes (`pg_column_size`).
    bytes: int = 0
    seconds: float = 0.0
    #: Serialization failures (a live writer changed a rollup minute) the day was retried after.
    retries: int = 0

    @property
    def bytes_per_trade(self) -> float | None:
        return self.bytes / self.trades if self.trades else None


@dataclass(frozen=True, slots=True)
class CompressResult:
    """What `db compress` did (or, `done` False, would do) with the months before `before`,
    and with the days before `days_before` of months still holding rows."""

    before: datetime
    months: tuple[MonthCompression, ...]
    done: bool
    days_before: datetime | None = None
    days: tuple[DayCompression, ...] = ()

    @property
    def trades(self) -> int:
        return sum(m.trades for m in self.months) + sum(d.trades for d in self.days)


@dataclass(frozen=True, slots=True)
class CompressedMonth:
    """A row of `compressed_months`."""

    market: int
    month: datetime
    trades: int
    blocks: int
    bytes: int
    row_bytes: int
    compressed_at: datetime


_CATALOG_SQL = """
SELECT market, month, trades, blocks, bytes, row_bytes, compressed_at
FROM compressed_months ORDER BY market, month"""


def compressed_months(conn: Connection) -> list[CompressedMonth]:
    """Every compressed (market, month), oldest first."""
    return [
        CompressedMonth(
            int(m), mo.astimezone(UTC), int(t), int(b), int(s), int(r), at.astimezone(UTC)
        )
        for m, mo, t, b, s, r, at in conn.execute(_CATALOG_SQL).fetchall()
    ]


def _holds_rows(conn: Connection, table: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(table))
    return bool(conn.execute(query).fetchone()[0])  # type: ignore[index]


def _rows_of(conn: Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return int(row.fetchone()[0])  # type: ignore[index]


def plan_compress(conn: Connection, before: datetime) -> CompressResult:
    """The months `compress(conn, before)` would work on now; changes nothing. A month is
    eligible when it ends at or before `before`: never compressed and holding rows, or
    compressed and holding late rows."""
    done = {c.month for c in compressed_months(conn)}  # the month's blocks exist: merge
    # Rows loaded before their month's partition existed wait in DEFAULT; `compress` makes
    # their months first (a compressed month's partition is attached, so they are not merges).
    months = [
        MonthCompression(
            part.start,
            "compress",
            part.rows_estimate,
            part.bytes,
            int(part.rows_estimate * ESTIMATED_BYTES_PER_TRADE),
        )
        for part in default_months(conn, before)
        if part.start is not None
    ]
    for part in list_partitions(conn):
        if part.start is None or part.end is None or part.end > before:
            continue
        if not _holds_rows(conn, part.name):
            continue
        merge = part.start in done
        action = "merge" if merge else "compress"
        # Late rows are few (counted); a month of rows is counted from its rollup, not scanned.
        rows = _rows_of(conn, part.name) if merge else _rollup_trades(conn, part.start, part.end)
        estimate = int(rows * ESTIMATED_BYTES_PER_TRADE)
        months.append(MonthCompression(part.start, action, rows, part.bytes, estimate))
    return CompressResult(before, tuple(sorted(months, key=_month_of)), done=False)


def _month_of(planned: MonthCompression) -> datetime:
    return planned.month


def compress(
    conn: Connection,
    before: datetime,
    *,
    lock_timeout: timedelta = COMPRESS_LOCK_TIMEOUT,
    progress: Callable[[MonthCompression], None] | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> CompressResult:
    """Compress (or merge late rows into) every eligible month before `before`, oldest first,
    one transaction each; `progress` learns each month done. `stopping` is asked between
    symbol-days: once true, the month under way rolls back and AbortedError is raised.

    Closed months whose rows wait in the DEFAULT partition get their partitions first (the
    rows move there, as `ensure_partitions` does), then are compressed as the others."""
    if default_months(conn, before):
        ensure_partitions(conn, before, before)
    months = []
    for planned in plan_compress(conn, before).months:
        done = compress_month(conn, planned.month, lock_timeout=lock_timeout, stopping=stopping)
        months.append(done)
        if progress is not None:
            progress(done)
    return CompressResult(before, tuple(months), done=True)


def compress_month(
    conn: Connection,
    month: datetime,
    *,
    lock_timeout: timedelta = COMPRESS_LOCK_TIMEOUT,
    stopping: Callable[[], bool] = lambda: False,
) -> MonthCompression:
    """Compress one UTC month's rows (or merge its late rows into its blocks), in one
    transaction; see the module's docstring. CompressionCheckError (nothing changed) when the
    blocks would not answer as the rows; DatabaseBusyError when a lock is not granted in time."""
    import time

    began = time.perf_counter()
    rows_table = f"trades_{month:%Y_%m}"
    try:
        with conn.transaction():
            conn.execute(
                f"SET LOCAL lock_timeout = {int(lock_timeout / timedelta(milliseconds=1))}"
            )
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
            conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(rows_table)))
            row_bytes = _size(conn, rows_table)
            merging = _is_compressed(conn, month)
            if merging:
                trades = _merge(conn, month, rows_table, stopping)
                table = block_month_name(month)
            else:
                table = new_month_table(conn, month)
                trades = _build(conn, month, rows_table, table, stopping)
            _check(conn, month, rows_table, table, merging=merging)
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(rows_table)))
            if not merging:
                table = attach_month(conn, table, month)
            blocks, size = _blocks_and_size(conn, table)
            _record(conn, month, size, row_bytes)
    except psycopg.errors.LockNotAvailable:
        raise DatabaseBusyError(
            f"{rows_table} stayed locked by other sessions for "
            f"{lock_timeout.total_seconds():g} s; nothing was compressed; try again"
        ) from None
    return MonthCompression(
        month,
        "merge" if merging else "compress",
        trades,
        row_bytes,
        size,
        blocks,
        time.perf_counter() - began,
    )


def _size(conn: Connection, table: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()
    return int(row[0])  # type: ignore[index]


def _is_compressed(conn: Connection, month: datetime) -> bool:
    """True if the month has blocks (of any market): its block partition is attached, and
    rows of every market are merged into it."""
    row = conn.execute("SELECT 1 FROM compressed_months WHERE month = %s", (month,)).fetchone()
    return row is not None


def _blocks_and_size(conn: Connection, table: str) -> tuple[int, int]:
    count = _rows_of(conn, table)
    return count, _size(conn, table)


_SYMBOLS_SQL = (
    "SELECT market, symbol, count(*) FROM {} GROUP BY market, symbol ORDER BY market, symbol"
)
_DAY_ROWS_SQL = f"""
SELECT trade_id, price::text, quantity::text, {_MS_EXPR}, is_buyer_maker FROM {{}}
WHERE market = %s AND symbol = %s AND "timestamp" >= %s AND "timestamp" < %s"""


def _day_rows(
    conn: Connection, table: str, market: int, symbol: str, day: datetime
) -> list[CodecTrade]:
    query = sql.SQL(_DAY_ROWS_SQL).format(sql.Identifier(table))
    rows: list[CodecTrade] = conn.execute(query, (market, symbol, day, day + DAY)).fetchall()
    return rows


def _days(month: datetime) -> list[datetime]:
    end = add_months(month, 1)
    days, day = [], month
    while day < end:
        days.append(day)
        day += DAY
    return days


def _build(
    conn: Connection, month: datetime, rows_table: str, table: str, stopping: Callable[[], bool]
) -> int:
    """Every row of the month as blocks in `table`; the number of trades.

    The blocks are COPYed into a temporary table first and moved with one INSERT … SELECT
    (the compressed values move as they are): COPY's multi-row inserts left ~12 % of the
    heap's pages unused (6.95 against 6.1 bytes a trade on the 1M-trade day, measured by
    benchmarks/compressed.py)."""
    total = 0
    conn.execute(_STAGING_SQL)
    query = sql.SQL(_SYMBOLS_SQL).format(sql.Identifier(rows_table))
    for market, symbol, count in conn.execute(query).fetchall():
        for day in _days(month):
            _stop_if(stopping, month)
            trades = _day_rows(conn, rows_table, market, symbol, day)
            if trades:
                dense = is_dense(len(trades), DAY_MINUTES)
                blocks = encode_blocks(symbol, trades, dense=dense, market=market)
                write_blocks(conn, blocks, _STAGING)
        total += int(count)
    conn.execute(
        sql.SQL(
            "INSERT INTO {} SELECT * FROM {} ORDER BY market, symbol, first_ts, first_id"
        ).format(sql.Identifier(table), sql.Identifier(_STAGING))
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(_STAGING)))
    return total


_STAGING = "binprice_compress_staging"
_STAGING_SQL = f"""
CREATE TEMP TABLE {_STAGING} (LIKE trade_blocks INCLUDING STORAGE INCLUDING COMPRESSION)
WITH (toast_tuple_target = 128) ON COMMIT DROP"""


_TOUCHED_SQL = """
SELECT market, symbol, date_trunc('day', "timestamp", 'UTC') AS day FROM {}
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
_DELETE_DAY_SQL = """
DELETE FROM trade_blocks WHERE market = %s AND symbol = %s AND first_ts >= %s AND first_ts < %s"""


def _stop_if(stopping: Callable[[], bool], month: datetime) -> None:
    if stopping():
        raise AbortedError(f"compressing {month:%Y-%m} was stopped; nothing was changed")


def _merge(conn: Connection, month: datetime, rows_table: str, stopping: Callable[[], bool]) -> int:
    """The late rows of a compressed month merged into its blocks, day by day; the rows that
    were new (not already in the blocks). The rollup of the touched days is recomputed."""
    added = 0
    touched = conn.execute(sql.SQL(_TOUCHED_SQL).format(sql.Identifier(rows_table))).fetchall()
    for market, symbol, day in touched:
        _stop_if(stopping, month)
        day = day.astimezone(UTC)
        old = [
            t
            for b in read_blocks(conn, symbol, day, day + DAY, market=market)
            if day <= from_ms(b.first_ms) < day + DAY
            for t in decode_block(b)
        ]
        have = {t[0] for t in old}
        rows = _day_rows(conn, rows_table, market, symbol, day)
        late = [t for t in rows if t[0] not in have]
        added += len(late)
        merged = old + late
        dense = is_dense(len(merged), DAY_MINUTES)
        blocks = encode_blocks(symbol, merged, dense=dense, market=market)
        conn.execute(_DELETE_DAY_SQL, (market, symbol, day, day + DAY))
        write_blocks(conn, blocks)
        _recompute_rollup(conn, market, symbol, day)
    return added


#: The blocks of a table decoded to trades (the `trades_all` view's expression), then per
#: symbol and UTC minute the rollup's columns.
_BLOCK_MINUTES_SQL = """
WITH d AS (
    SELECT b.market, b.symbol, b.first_id + coalesce(b.ids[u.i], u.i - 1) AS trade_id,
           round((b.base_price + sum(u.p) OVER w)::numeric / 10::numeric ^ b.price_scale,
                 b.price_digits) AS price,
           round(u.q::numeric / 10::numeric ^ b.qty_scale, b.qty_digits) AS quantity,
           b.first_ts + (sum(u.d) OVER w) * interval '1 millisecond' AS ts
    FROM {table} AS b
    CROSS JOIN LATERAL unnest(b.ms, b.price, b.qty) WITH ORDINALITY AS u(d, p, q, i)
    WHERE b.first_ts >= %(lo)s AND b.first_ts < %(hi)s {symbol_filter}
    WINDOW w AS (PARTITION BY b.market, b.symbol, b.first_ts, b.first_id ORDER BY u.i)
)
SELECT market, symbol, date_trunc('minute', ts, 'UTC') AS minute, count(*) AS trades,
       sum(quantity) AS volume, sum(price * quantity) AS notional,
       max(price) AS high, min(price) AS low, min(trade_id) AS first_id,
       max(trade_id) AS last_id, (array_agg(price ORDER BY trade_id))[1] AS open,
       (array_agg(price ORDER BY trade_id DESC))[1] AS close
FROM d GROUP BY 1, 2, 3"""
_ROLLUP_COLUMNS = (
    "market, symbol, minute, trades, volume, notional, high, low, first_id, last_id, open, close"
)
_CHECK_SQL = f"""
WITH blocks AS ({_BLOCK_MINUTES_SQL}),
rollup AS (
    SELECT {_ROLLUP_COLUMNS} FROM trade_minutes
    WHERE minute >= %(lo)s AND minute < %(hi)s
)
SELECT (SELECT count(*) FROM (SELECT * FROM blocks EXCEPT SELECT * FROM rollup) AS a),
       (SELECT count(*) FROM (SELECT * FROM rollup EXCEPT SELECT * FROM blocks) AS b),
       (SELECT coalesce(sum(trades), 0) FROM {{table}} WHERE first_ts >= %(lo)s
            AND first_ts < %(hi)s)"""


def _check(
    conn: Connection, month: datetime, rows_table: str, table: str, *, merging: bool
) -> None:
    """Raise CompressionCheckError unless the month's blocks hold as many trades as the rows
    (all of them, or the rollup's count when merging) and their per-minute aggregate is the
    rollup's."""
    lo, hi = month, add_months(month, 1)
    query = _CHECK_SQL.format(table=sql.Identifier(table).as_string(conn), symbol_filter="")
    missing, extra, held = conn.execute(query, {"lo": lo, "hi": hi}).fetchone()  # type: ignore[misc]
    expected = _rollup_trades(conn, lo, hi) if merging else _rows_of(conn, rows_table)
    if missing or extra or int(held) != expected:
        raise CompressionCheckError(
            f"the blocks built for {month:%Y-%m} differ from its rows: {missing} minute(s) of "
            f"the blocks not in the rollup, {extra} of the rollup not in the blocks, {held} "
            f"trades in blocks for {expected} expected; nothing was changed (check the month "
            "with `binprice gaps --verify`)"
        )


def _rollup_trades(conn: Connection, lo: datetime, hi: datetime) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(trades), 0) FROM trade_minutes WHERE minute >= %s AND minute < %s",
        (lo, hi),
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def _recompute_rollup(conn: Connection, market: int, symbol: str, day: datetime) -> None:
    """The rollup minutes of `symbol`'s UTC `day` in `market`, recomputed from its blocks."""
    conn.execute(
        "DELETE FROM trade_minutes WHERE market = %s AND symbol = %s AND minute >= %s "
        "AND minute < %s",
        (market, symbol, day, day + DAY),
    )
    query = _BLOCK_MINUTES_SQL.format(
        table="trade_blocks",
        symbol_filter="AND b.market = %(market)s AND b.symbol = %(symbol)s",
    )
    conn.execute(
        f"INSERT INTO trade_minutes ({_ROLLUP_COLUMNS}) {query}",
        {"lo": day, "hi": day + DAY, "market": market, "symbol": symbol},
    )


#: Per market with blocks in a month: its blocks, trades and the blocks' own bytes.
_MARKET_SHARES_SQL = """
SELECT market, count(*), coalesce(sum(trades), 0), sum(pg_column_size(b.*))
FROM trade_blocks AS b WHERE first_ts >= %s AND first_ts < %s GROUP BY market ORDER BY market"""
_RECORD_SQL = """
INSERT INTO compressed_months (market, month, trades, blocks, bytes, row_bytes)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (market, month) DO UPDATE SET trades = EXCLUDED.trades, blocks = EXCLUDED.blocks,
    bytes = EXCLUDED.bytes, compressed_at = now()"""


def _record(conn: Connection, month: datetime, size: int, row_bytes: int) -> None:
    """A `compressed_months` row per market with blocks in the month (new, or updated after a
    merge; a merge keeps its `row_bytes`): its blocks and trades, and its share, by its blocks'
    own bytes, of the month's size and of the rows' (a month of one market: all of both)."""
    markets = conn.execute(_MARKET_SHARES_SQL, (month, add_months(month, 1))).fetchall()
    total = sum(int(own) for *_, own in markets)
    for market, blocks, trades, own in markets:
        share = int(own) / total if len(markets) > 1 else 1.0
        values = (round(size * share), round(row_bytes * share))
        conn.execute(_RECORD_SQL, (market, month, int(trades), int(blocks), *values))
