"""The archive import's SQL: the `imports` rows, the per-symbol import lock, and the loader's
COPY into `trades` with its staging-table fallback.

The loader (`history/_load.py`) runs on a sync connection in a worker thread; the planning and
timeline passes (`history/_importer.py`, `history/_timeline.py`) on the run's async connection.
Each statement sits next to the one function that runs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from binprice.compressed.codec import Block
from binprice.db.blocks import ensure_block_month
from binprice.db.claims import claim_prefix
from binprice.db.compress import PARTITION_LOCK_KEY
from binprice.db.copy import COLUMNS, CREATE_STAGE, STAGE_TABLE, copy_stage
from binprice.db.copy import copy_trades as copy_trades_sql
from binprice.db.liverollup import MINUTE_MERGE
from binprice.kinds import TradeKind
from binprice.markets import DEFAULT_MARKET, Market

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]

#: pg_try_advisory_lock(class, hashtext(symbol)) key: one import per symbol at a time ("bimp").
IMPORT_LOCK_CLASS = 0x62696D70

_RECORDED_SQL = """
SELECT name, sha256, state, rows, inserted, first_id, last_id, period_start, period_end
FROM imports WHERE market = %s AND kind = %s AND symbol = ANY(%s)
"""
_TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
_RESUME_SQL = (
    "SELECT rows, inserted, first_id, last_id FROM imports "
    "WHERE market = %s AND kind = %s AND name = %s AND sha256 = %s"
)
_UPSERT_IMPORT_SQL = """
INSERT INTO imports (market, kind, name, symbol, period_start, period_end, sha256, state, rows,
                     inserted, first_id, last_id, source)
VALUES (%(market)s, %(kind)s, %(name)s, %(symbol)s, %(start)s, %(end)s, %(sha256)s, %(state)s,
        %(rows)s, %(inserted)s, %(first_id)s, %(last_id)s, %(source)s)
ON CONFLICT (market, name) DO UPDATE SET
    sha256 = EXCLUDED.sha256, state = EXCLUDED.state, rows = EXCLUDED.rows,
    inserted = EXCLUDED.inserted, first_id = EXCLUDED.first_id, last_id = EXCLUDED.last_id,
    source = EXCLUDED.source, imported_at = now()
"""
#: The id extents of a symbol's stored files whose period overlaps a range of days.
_EXTENTS_SQL = """
SELECT first_id, last_id FROM imports
WHERE market = %s AND kind = %s AND symbol = %s AND period_start < %s AND period_end > %s
  AND first_id IS NOT NULL
ORDER BY first_id
"""
#: Bounded to the file's period, which holds the times of all its trades (a stored trade of
#: a later id is later, and cannot collide with the file): the probe then reads the file's
#: month only, and its chunk's transaction locks no other partition, DEFAULT included, which
#: the next file's loader may need to make its month.
NEXT_STORED_SQL = (
    "SELECT min(trade_id) FROM trades WHERE market = %s AND symbol = %s AND trade_id >= %s "
    "AND timestamp >= %s AND timestamp < %s"
)
_TRUNCATE_STAGE_SQL = f"TRUNCATE {STAGE_TABLE}"
_INSERT_NEW_SQL = (
    f"INSERT INTO trades ({COLUMNS}, market) SELECT {COLUMNS}, market FROM {STAGE_TABLE} "
    "ON CONFLICT (market, symbol, trade_id, timestamp) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """A file's `imports` row at the start of the run."""

    sha256: str
    state: str
    rows: int
    inserted: int
    first_id: int | None
    last_id: int | None
    start: date
    end: date

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]


@dataclass(frozen=True, slots=True)
class Resume:
    """What an earlier run committed of the same file (same checksum)."""

    rows: int
    inserted: int
    first_id: int | None
    last_id: int


@dataclass(frozen=True, slots=True)
class ImportRow:
    """A file's `imports` row as a loader commits it with each chunk."""

    name: str
    symbol: str
    start: date
    end: date
    sha256: str
    #: `partial` or `done`.
    state: str
    rows: int
    inserted: int
    first_id: int | None
    last_id: int | None
    source: str
    market: Market = DEFAULT_MARKET
    kind: TradeKind = TradeKind.TRADES


async def recorded_imports(
    conn: AsyncConnection,
    symbols: list[str],
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = TradeKind.TRADES,
) -> dict[str, ImportRecord]:
    """The `imports` rows of `symbols` in `market` of `kind`, by file name."""
    cur = await conn.execute(_RECORDED_SQL, (market.number, kind.number, symbols))
    return {
        str(name): ImportRecord(str(sha), str(state), int(rows), int(ins), first, last, start, end)
        for name, sha, state, rows, ins, first, last, start, end in await cur.fetchall()
    }


async def try_lock_import(
    conn: AsyncConnection,
    symbol: str,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = TradeKind.TRADES,
) -> bool:
    """Take the session's advisory lock on importing `symbol` of `market` (futures keys as the
    claims': `usdm:BTCUSDT`; aggregate trades' `aggTrades:usdm:BTCUSDT`); False if another
    session has it."""
    key = claim_prefix(market) + symbol
    if kind is not TradeKind.TRADES:
        key = f"{kind}:{key}"
    cur = await conn.execute(_TRY_LOCK_SQL, (IMPORT_LOCK_CLASS, key))
    row = await cur.fetchone()
    return row is not None and bool(row[0])


async def import_extents(
    conn: AsyncConnection,
    symbol: str,
    start: date,
    end: date,
    market: Market = DEFAULT_MARKET,
    *,
    kind: TradeKind = TradeKind.TRADES,
) -> list[tuple[int, int]]:
    """(first id, last id) of each stored file of `symbol` in `market` of `kind`
    overlapping `start..end`, by first id."""
    cur = await conn.execute(_EXTENTS_SQL, (market.number, kind.number, symbol, end, start))
    return [(int(a), int(b)) for a, b in await cur.fetchall()]


def resume_point(
    conn: Connection,
    name: str,
    sha256: str,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = TradeKind.TRADES,
) -> Resume | None:
    """What is committed of file `name` of `market` with this checksum, None if nothing."""
    row = conn.execute(_RESUME_SQL, (market.number, kind.number, name, sha256)).fetchone()
    if row is None or row[3] is None:
        return None
    return Resume(int(row[0]), int(row[1]), row[2], int(row[3]))


def record_import(conn: Connection, row: ImportRow) -> None:
    """Insert or update the file's `imports` row (in the chunk's transaction)."""
    conn.execute(
        _UPSERT_IMPORT_SQL,
        {
            "market": row.market.number,
            "kind": row.kind.number,
            "name": row.name,
            "symbol": row.symbol,
            "start": row.start,
            "end": row.end,
            "sha256": row.sha256,
            "state": row.state,
            "rows": row.rows,
            "inserted": row.inserted,
            "first_id": row.first_id,
            "last_id": row.last_id,
            "source": row.source,
        },
    )


def next_stored_id(
    conn: Connection,
    symbol: str,
    first_id: int,
    start: datetime,
    end: datetime,
    *,
    market: Market = DEFAULT_MARKET,
) -> int | None:
    """The lowest stored id of `symbol` in `market` from `first_id` on with a time in
    `start..end`."""
    params = (market.number, symbol, first_id, start, end)
    row = conn.execute(NEXT_STORED_SQL, params).fetchone()
    return None if row is None or row[0] is None else int(row[0])


@contextmanager
def copy_trades(conn: Connection, market: Market = DEFAULT_MARKET) -> Iterator[psycopg.Copy]:
    """A `COPY trades FROM STDIN` of `market`'s rows to `write` COPY text blocks into; it ends
    on exit (a stored id then raises UniqueViolation)."""
    with conn.cursor() as cur, cur.copy(copy_trades_sql(market)) as copy:
        yield copy


class StagedInsert:
    """COPY text blocks inserted through a temporary staging table, skipping stored ids."""

    __slots__ = ("_conn", "_copy", "_ready")

    #: The staging table's statements (`db.aggimport.AggStagedInsert` names those of
    #: `agg_trades`).
    create_sql = CREATE_STAGE
    truncate_sql = _TRUNCATE_STAGE_SQL
    insert_sql = _INSERT_NEW_SQL

    def __init__(self, conn: Connection, market: Market = DEFAULT_MARKET) -> None:
        self._conn = conn
        self._ready = False
        self._copy = self.copy_sql(market)

    @staticmethod
    def copy_sql(market: Market) -> str:
        """The COPY into the staging table of `market`'s rows."""
        return copy_stage(market)

    def insert(self, payload: bytes) -> int:
        """Insert the rows of `payload` not stored yet; return how many were new."""
        conn = self._conn
        if not self._ready:
            conn.execute(self.create_sql)
            self._ready = True
        with conn.cursor() as cur:
            cur.execute(self.truncate_sql)
            with cur.copy(self._copy) as copy:
                copy.write(payload)
            cur.execute(self.insert_sql)
            return max(cur.rowcount, 0)


# --- the compressed form: a closed month's file written as blocks (history/_compact.py) ----

#: The rollup rows of a chunk's blocks, staged by COPY, then merged into `trade_minutes` the
#: way the insert trigger on `trades` merges rows (migrations 0004/0005): counts and sums
#: add, high and low widen, open and close come from the lowest and highest id. Grouped first,
#: so a minute staged twice (its trades in two runs of different decimals) is one upsert.
_MINUTE_STAGE = "binprice_minutes_stage"
_CREATE_MINUTE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_MINUTE_STAGE} (
    symbol text, minute_ms bigint, trades bigint, volume numeric, notional numeric,
    high numeric, low numeric, first_id bigint, last_id bigint, open numeric, close numeric
) ON COMMIT DELETE ROWS
"""
_COPY_MINUTE_STAGE = (
    f"COPY {_MINUTE_STAGE} (symbol, minute_ms, trades, volume, notional, high, low, "
    "first_id, last_id, open, close) FROM STDIN"
)
_MERGE_MINUTES_SQL = f"""
INSERT INTO trade_minutes AS m (market, symbol, minute, trades, volume, notional, high, low,
                                first_id, last_id, open, close)
SELECT %(market)s, symbol, to_timestamp(minute_ms / 1000.0), sum(trades), sum(volume),
       sum(notional), max(high), min(low), min(first_id), max(last_id),
       (array_agg(open ORDER BY first_id))[1], (array_agg(close ORDER BY last_id DESC))[1]
FROM {_MINUTE_STAGE} GROUP BY symbol, minute_ms ORDER BY symbol, minute_ms
ON CONFLICT (market, symbol, minute) DO UPDATE SET{MINUTE_MERGE}
"""


def add_minutes(
    conn: Connection, rows: Iterable[Sequence[str]], market: Market = DEFAULT_MARKET
) -> None:
    """Add the rollup of `market`'s trades written as blocks (text rows in `trade_minutes`'
    columns, the minute as epoch ms) to `trade_minutes`, in the caller's transaction."""
    conn.execute(_CREATE_MINUTE_STAGE)
    with conn.cursor() as cur:
        with cur.copy(_COPY_MINUTE_STAGE) as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(_MERGE_MINUTES_SQL, {"market": market.number})


#: pg_advisory_xact_lock(class, hashtext(symbol || day)) key: the writers of one symbol's UTC
#: day into blocks, one at a time ("bblk").
BLOCK_DAY_LOCK_CLASS = 0x62626C6B
_LOCK_DAY_SQL = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
#: Two probes of the primary key: a block holding `lo` (it starts on `lo`'s day, since a block
#: never crosses one), else the first block starting after `lo`.
_NEXT_BLOCK_SQL = """
SELECT least(
    (SELECT %(lo)s::bigint WHERE EXISTS (
        SELECT FROM trade_blocks
        WHERE market = %(market)s AND symbol = %(symbol)s
          AND first_ts >= to_timestamp(%(day)s / 1000.0)
          AND first_ts <= to_timestamp(%(lo)s / 1000.0)
          AND last_ts >= to_timestamp(%(lo)s / 1000.0))),
    (SELECT (extract(epoch FROM min(first_ts)) * 1000)::bigint FROM trade_blocks
     WHERE market = %(market)s AND symbol = %(symbol)s
       AND first_ts > to_timestamp(%(lo)s / 1000.0) AND first_ts < %(end)s))
"""
_DELETE_BLOCK_SQL = (
    "DELETE FROM trade_blocks WHERE market = %s AND symbol = %s "
    "AND first_ts = to_timestamp(%s / 1000.0) AND first_id = %s"
)
_STORED_ROW_IDS_SQL = (
    "SELECT trade_id FROM trades WHERE market = %s AND symbol = %s AND trade_id BETWEEN %s AND %s "
    "AND timestamp >= %s AND timestamp < %s"
)
_DAY_MS = 86_400_000


def lock_block_day(
    conn: Connection, symbol: str, day: int, market: Market = DEFAULT_MARKET
) -> None:
    """Wait for, then hold until the transaction ends, the lock on writing `symbol`'s blocks
    of `market` of UTC day `day` (days since the epoch). Take them in day order."""
    key = f"{claim_prefix(market)}{symbol}:{day}"
    conn.execute(_LOCK_DAY_SQL, (BLOCK_DAY_LOCK_CLASS, key))


def next_block_time(
    conn: Connection, symbol: str, lo: int, end: datetime, market: Market = DEFAULT_MARKET
) -> int | None:
    """The earliest time (epoch ms) of `symbol`'s blocks of `market` holding a trade at or
    after `lo` (epoch ms) and starting before `end`; `lo` itself if one holds it."""
    row = conn.execute(
        _NEXT_BLOCK_SQL,
        {
            "market": market.number,
            "symbol": symbol,
            "day": lo // _DAY_MS * _DAY_MS,
            "lo": lo,
            "end": end,
        },
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def delete_blocks(conn: Connection, blocks: Iterable[Block]) -> None:
    """Delete `blocks` (by their key), in the caller's transaction."""
    with conn.cursor() as cur:
        cur.executemany(
            _DELETE_BLOCK_SQL, [(b.market, b.symbol, b.first_ms, b.first_id) for b in blocks]
        )


def stored_row_ids(
    conn: Connection,
    symbol: str,
    ids: tuple[int, int],
    times: tuple[datetime, datetime],
    market: Market = DEFAULT_MARKET,
) -> set[int]:
    """The ids of `ids` (first, last) stored as rows of `market`'s `trades` with a time in
    `times`."""
    rows = conn.execute(_STORED_ROW_IDS_SQL, (market.number, symbol, *ids, *times)).fetchall()
    return {int(row[0]) for row in rows}


#: The month's row in the catalog readers route by; its counts are what `db compress` sets,
#: so an import adds the trades it stores and leaves the sizes to the next compress run.
_CATALOG_MONTH_SQL = (
    "INSERT INTO compressed_months (market, month, trades, blocks, bytes, row_bytes) "
    "VALUES (%s, %s, 0, 0, 0, 0) ON CONFLICT DO NOTHING"
)
_COUNT_MONTH_SQL = (
    "UPDATE compressed_months SET trades = trades + %s WHERE market = %s AND month = %s"
)


def open_block_month(conn: Connection, month: datetime, market: Market = DEFAULT_MARKET) -> None:
    """Make `month` a compressed month of `market` if it is not one: its partition of
    `trade_blocks` and its `compressed_months` row, in a transaction of its own (the
    partition lock that `db compress` and `prune` take keeps them from racing). Its rows of
    `trades`, if any, stay (readers read both) until `db compress` merges them."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
        ensure_block_month(conn, month)
        conn.execute(_CATALOG_MONTH_SQL, (market.number, month))


def count_block_month(
    conn: Connection, month: datetime, trades: int, market: Market = DEFAULT_MARKET
) -> None:
    """Add `trades` stored as blocks to `month`'s catalog row of `market`, in the caller's
    transaction."""
    if trades:
        conn.execute(_COUNT_MONTH_SQL, (trades, market.number, month))
