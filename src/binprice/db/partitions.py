"""The monthly partitions of `trades`: make sure they exist, list them.

`trades` is partitioned by UTC month of trade time (migration 0008): `trades_YYYY_MM` and a
DEFAULT partition, `trades_default`, that catches rows whose month has no partition yet.
Migration 0008's SQL function `binprice_ensure_trade_partitions(lo, hi)` does the creating:
the months overlapping `[lo, hi)`, and every month the DEFAULT partition holds rows of, whose
rows it moves into the new month in the same transaction. Writers call `ensure_ahead` (or
`ensure_partitions` for an archive's period) before they could need a new month, so the DEFAULT
partition stays empty; when it does not, nothing is lost and the next call empties it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

__all__ = [
    "MONTHS_AHEAD",
    "Partition",
    "ensure_ahead",
    "ensure_partitions",
    "list_partitions",
    "month_start",
]

Connection = psycopg.Connection[Any]

#: Months created after the current one, so the first trade of a month finds its partition
#: even when the writer last made sure weeks ago.
MONTHS_AHEAD = 2
MONTHS_PER_YEAR = 12

ENSURE_SQL = "SELECT binprice_ensure_trade_partitions(%s, %s)"

#: Every partition of trades with its bounds (NULL for DEFAULT), the planner's row estimate
#: and its size with indexes. Bounds are read back from the catalog's text, which carries the
#: UTC offset, so the cast is right whatever the session's time zone.
LIST_SQL = r"""
SELECT c.relname, b[1]::timestamptz, b[2]::timestamptz,
       greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
LEFT JOIN LATERAL regexp_match(
    pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$
) AS b ON true
WHERE i.inhparent = 'trades'::regclass
ORDER BY 2 NULLS LAST, 1
"""


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of `trades`; `start`/`end` are None for the DEFAULT partition."""

    name: str
    start: datetime | None
    end: datetime | None
    #: The planner's estimate (as of the last VACUUM or ANALYZE), not a count.
    rows_estimate: int
    #: Table, indexes and TOAST.
    bytes: int

    @property
    def is_default(self) -> bool:
        return self.start is None


def month_start(moment: datetime) -> datetime:
    """The first instant of `moment`'s UTC month."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """The start of the UTC month `count` months after the month starting at `month`."""
    index = month.year * MONTHS_PER_YEAR + month.month - 1 + count
    return datetime(index // MONTHS_PER_YEAR, index % MONTHS_PER_YEAR + 1, 1, tzinfo=UTC)


def ensure_partitions(conn: Connection, start: datetime, end: datetime) -> list[str]:
    """Make sure every UTC month overlapping `[start, end)` has its partition, and that the
    DEFAULT partition's rows are moved to theirs; return the partitions created.

    Takes an advisory lock (concurrent callers wait and then find the months made) and a
    SHARE UPDATE EXCLUSIVE lock on `trades` per month created, so it runs beside writers. Call
    it in a transaction of its own, not one that has written trades.
    """
    with conn.transaction():
        rows = conn.execute(ENSURE_SQL, (start, end)).fetchall()
    return [str(row[0]) for row in rows]


def ensure_ahead(conn: Connection, now: datetime | None = None) -> list[str]:
    """`ensure_partitions` for the current UTC month and the `MONTHS_AHEAD` after it: what a
    writer calls when it starts and then at least once a month (hourly is cheap)."""
    current = month_start(now or datetime.now(UTC))
    return ensure_partitions(conn, current, add_months(current, MONTHS_AHEAD + 1))


def list_partitions(conn: Connection) -> list[Partition]:
    """Every partition of `trades`, oldest month first, the DEFAULT partition last."""
    return [
        Partition(str(name), start, end, int(rows), int(size))
        for name, start, end, rows, size in conn.execute(LIST_SQL).fetchall()
    ]
