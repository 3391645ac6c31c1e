"""Which months are compressed: the catalog `compressed_months` (a few rows), read by every
question before it decides whether to read blocks at all.

Kept apart from `db.blockreads` (and the codec it imports) so that a question over row months
only — `binprice latest` on a live database — imports nothing of the compressed format.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus

from binprice.markets import Market

#: Spot's market number in `trade_blocks` and `compressed_months` (`Market.number`).
MARKET_SPOT = Market.SPOT.number

MONTHS_SQL = "SELECT month FROM compressed_months WHERE market = %s ORDER BY month"


def _next_month(month: datetime) -> datetime:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True, slots=True)
class Compressed:
    """The compressed months (their first instants, UTC), from the catalog."""

    months: tuple[datetime, ...]

    def __bool__(self) -> bool:
        return bool(self.months)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether any compressed month shares an instant with ``[start, end)``."""
        return any(month < end and _next_month(month) > start for month in self.months)


def compressed_catalog(conn: psycopg.Connection[Any], market: Market = Market.SPOT) -> Compressed:
    """Which months of `market` have blocks (a few catalog rows; no table is read)."""
    rows = conn.execute(MONTHS_SQL, (market.number,)).fetchall()
    return Compressed(tuple(row[0].astimezone(UTC) for row in rows))


@contextmanager
def snapshot(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """The reads inside see one snapshot: a REPEATABLE READ READ ONLY transaction, or the
    caller's transaction if one is open (then the caller chose its snapshot).

    A read that combines rows and blocks needs it: under READ COMMITTED each statement sees
    the commits made before it, so a day's compress committing between the rows' statement
    and the blocks' could hide that day from the answer. The connection's own settings are
    put back afterwards (a writer on the same connection keeps its isolation level).
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    saved = conn.isolation_level, conn.read_only
    conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
    try:
        with conn.transaction():
            yield
    finally:
        conn.isolation_level, conn.read_only = saved


def in_snapshot(conn: psycopg.Connection[Any]) -> bool:
    """Whether `conn` is inside a transaction (its statements share its snapshot if it is
    REPEATABLE READ: `snapshot`)."""
    return conn.info.transaction_status != TransactionStatus.IDLE
