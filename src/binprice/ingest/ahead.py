"""The months ahead, made while live capture runs, so a month's first trade finds its partition.

`binprice ingest` makes this month's partition of `trades` and the next two when it starts,
before its first write, and again every `ENSURE_INTERVAL_SECONDS` (one success a month would
do; hourly is cheap: an advisory lock and a look at the empty DEFAULT partition, and it leaves
hundreds of tries before a month turns). Before the first write, because a month made while a
write is routing its rows to DEFAULT fails that write (see `month_made_meanwhile`; the writer
then writes the batch again). Each try has a connection and a transaction of its own.
A try that cannot get its brief lock on the DEFAULT partition (a long export holds it:
`DatabaseBusyError`) or cannot reach the database is one event line, and the next interval tries
again; capture never waits for it. Were every try to fail, a new month's trades would still be
stored: they wait in the DEFAULT partition and move to their month when it is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from binprice.db import connect_async, database_error
from binprice.db.partitions import ENSURE_LOCK_TIMEOUT, ensure_ahead_async
from binprice.errors import DatabaseError
from binprice.events import Emit, EventKind
from binprice.timespec import format_duration

__all__ = ["ENSURE_INTERVAL_SECONDS", "ensure_months_ahead", "keep_months_ahead"]

#: How often a running ingest makes sure of the months ahead.
ENSURE_INTERVAL_SECONDS = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def keep_months_ahead(
    url: str,
    emit: Emit,
    *,
    interval: float = ENSURE_INTERVAL_SECONDS,
    clock: Callable[[], datetime] = _utc_now,
    lock_timeout: timedelta = ENSURE_LOCK_TIMEOUT,
) -> None:
    """Every `interval` seconds, until cancelled, make the months ahead of `clock()` (the run
    made them once already when it started, before its first write)."""
    while True:
        await asyncio.sleep(interval)
        await ensure_months_ahead(
            url, emit, now=clock(), lock_timeout=lock_timeout, retry_in=interval
        )


async def ensure_months_ahead(
    url: str,
    emit: Emit,
    *,
    now: datetime | None = None,
    lock_timeout: timedelta = ENSURE_LOCK_TIMEOUT,
    retry_in: float = ENSURE_INTERVAL_SECONDS,
) -> list[str]:
    """One try, on a connection of its own; the partitions made. A failure is one event line
    (PARTITIONS_ERROR) and no partition: it never raises a database error."""
    try:
        async with await connect_async(url) as conn:
            made = await ensure_ahead_async(conn, now, lock_timeout=lock_timeout)
    except (DatabaseError, psycopg.Error) as exc:
        error = exc if isinstance(exc, DatabaseError) else database_error(url, exc)
        later = format_duration(timedelta(seconds=retry_in))
        emit(
            EventKind.PARTITIONS_ERROR,
            f"the partitions ahead were not made: {error} (tried "
            f"again in {later}; trades are stored meanwhile)",
        )
        return []
    if made:
        emit(EventKind.PARTITIONS, f"made the partitions ahead: {', '.join(made)}")
    return made
