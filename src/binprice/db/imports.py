"""The archive import's SQL: the `imports` rows, the per-symbol import lock, and the loader's
COPY into `trades` with its staging-table fallback.

The loader (`history/_load.py`) runs on a sync connection in a worker thread; the planning and
timeline passes (`history/_importer.py`, `history/_timeline.py`) on the run's async connection.
Each statement sits next to the one function that runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from binprice.db.copy import COLUMNS, COPY_STAGE, COPY_TRADES, CREATE_STAGE, STAGE_TABLE

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]

#: pg_try_advisory_lock(class, hashtext(symbol)) key: one import per symbol at a time ("bimp").
IMPORT_LOCK_CLASS = 0x62696D70

_RECORDED_SQL = """
SELECT name, sha256, state, rows, inserted, first_id, last_id, period_start, period_end
FROM imports WHERE symbol = ANY(%s)
"""
_TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
_RESUME_SQL = (
    "SELECT rows, inserted, first_id, last_id FROM imports WHERE name = %s AND sha256 = %s"
)
_UPSERT_IMPORT_SQL = """
INSERT INTO imports (name, symbol, period_start, period_end, sha256, state, rows, inserted,
                     first_id, last_id, source)
VALUES (%(name)s, %(symbol)s, %(start)s, %(end)s, %(sha256)s, %(state)s, %(rows)s, %(inserted)s,
        %(first_id)s, %(last_id)s, %(source)s)
ON CONFLICT (name) DO UPDATE SET
    sha256 = EXCLUDED.sha256, state = EXCLUDED.state, rows = EXCLUDED.rows,
    inserted = EXCLUDED.inserted, first_id = EXCLUDED.first_id, last_id = EXCLUDED.last_id,
    source = EXCLUDED.source, imported_at = now()
"""
#: The id extents of a symbol's stored files whose period overlaps a range of days.
_EXTENTS_SQL = """
SELECT first_id, last_id FROM imports
WHERE symbol = %s AND period_start < %s AND period_end > %s AND first_id IS NOT NULL
ORDER BY first_id
"""
#: Bounded to the file's period, which holds the times of all its trades (a stored trade of
#: a later id is later, and cannot collide with the file): the probe then reads the file's
#: month only, and its chunk's transaction locks no other partition, DEFAULT included, which
#: the next file's loader may need to make its month.
NEXT_STORED_SQL = (
    "SELECT min(trade_id) FROM trades WHERE symbol = %s AND trade_id >= %s "
    "AND timestamp >= %s AND timestamp < %s"
)
_TRUNCATE_STAGE_SQL = f"TRUNCATE {STAGE_TABLE}"
_INSERT_NEW_SQL = (
    f"INSERT INTO trades ({COLUMNS}) SELECT {COLUMNS} FROM {STAGE_TABLE} "
    "ON CONFLICT (symbol, trade_id, timestamp) DO NOTHING"
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


async def recorded_imports(conn: AsyncConnection, symbols: list[str]) -> dict[str, ImportRecord]:
    """The `imports` rows of `symbols`, by file name."""
    cur = await conn.execute(_RECORDED_SQL, (symbols,))
    return {
        str(name): ImportRecord(str(sha), str(state), int(rows), int(ins), first, last, start, end)
        for name, sha, state, rows, ins, first, last, start, end in await cur.fetchall()
    }


async def try_lock_import(conn: AsyncConnection, symbol: str) -> bool:
    """Take the session's advisory lock on importing `symbol`; False if another session has it."""
    cur = await conn.execute(_TRY_LOCK_SQL, (IMPORT_LOCK_CLASS, symbol))
    row = await cur.fetchone()
    return row is not None and bool(row[0])


async def import_extents(
    conn: AsyncConnection, symbol: str, start: date, end: date
) -> list[tuple[int, int]]:
    """(first id, last id) of each stored file of `symbol` overlapping `start..end`, by first id."""
    cur = await conn.execute(_EXTENTS_SQL, (symbol, end, start))
    return [(int(a), int(b)) for a, b in await cur.fetchall()]


def resume_point(conn: Connection, name: str, sha256: str) -> Resume | None:
    """What is committed of file `name` with this checksum, None if nothing."""
    row = conn.execute(_RESUME_SQL, (name, sha256)).fetchone()
    if row is None or row[3] is None:
        return None
    return Resume(int(row[0]), int(row[1]), row[2], int(row[3]))


def record_import(conn: Connection, row: ImportRow) -> None:
    """Insert or update the file's `imports` row (in the chunk's transaction)."""
    conn.execute(
        _UPSERT_IMPORT_SQL,
        {
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
    conn: Connection, symbol: str, first_id: int, start: datetime, end: datetime
) -> int | None:
    """The lowest stored id of `symbol` from `first_id` on with a time in `start..end`."""
    row = conn.execute(NEXT_STORED_SQL, (symbol, first_id, start, end)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


@contextmanager
def copy_trades(conn: Connection) -> Iterator[psycopg.Copy]:
    """A `COPY trades FROM STDIN` to `write` COPY text blocks into; it ends on exit (a stored
    id then raises UniqueViolation)."""
    with conn.cursor() as cur, cur.copy(COPY_TRADES) as copy:
        yield copy


class StagedInsert:
    """COPY text blocks inserted through a temporary staging table, skipping stored ids."""

    __slots__ = ("_conn", "_ready")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ready = False

    def insert(self, payload: bytes) -> int:
        """Insert the trades of `payload` not stored yet; return how many were new."""
        conn = self._conn
        if not self._ready:
            conn.execute(CREATE_STAGE)
            self._ready = True
        with conn.cursor() as cur:
            cur.execute(_TRUNCATE_STAGE_SQL)
            with cur.copy(COPY_STAGE) as copy:
                copy.write(payload)
            cur.execute(_INSERT_NEW_SQL)
            return max(cur.rowcount, 0)
