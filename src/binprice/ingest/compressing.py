"""Closed months, and the live month's closed days, compressed while live capture runs
(`binprice ingest --compress-after`, `--compress-days-after`).

Every `COMPRESS_INTERVAL_SECONDS` (the first time one interval after the start, so a short
run never compresses), the run compresses each month that closed at least `after` seconds
before its clock's now, and merges rows written since into the months compressed before
(`binprice.db.compress`: one transaction per month). Then each UTC day that ended at least
`days_after` seconds before now, of the months left (the live month), becomes blocks
(`binprice.db.compress_days`: one REPEATABLE READ transaction a day, live writers go on). The
waiting lets late backfills land as rows first; the blocks take them in later anyway.

The work is blocking database work, run in a thread on a connection of its own. Stopping the
run cancels the task: the thread is told to stop (it checks between symbol-days, and the
statement under way is cancelled on the server), the month under way rolls back, and the task
waits for the thread to end before it ends itself. A failure (a lock not granted, the server
away, a check that fails) is one event line; the next interval tries again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from binprice.db import connect, database_error
from binprice.db.compress import CompressResult, DayCompression, MonthCompression
from binprice.db.compress_days import compress_with_days
from binprice.errors import AbortedError, BinpriceError
from binprice.events import Emit, EventKind
from binprice.timespec import format_duration

__all__ = ["COMPRESS_INTERVAL_SECONDS", "compress_closed_months", "keep_compressing"]

#: How often a running ingest looks for months to compress.
COMPRESS_INTERVAL_SECONDS = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def keep_compressing(
    url: str,
    emit: Emit,
    *,
    after: float | None,
    days_after: float | None = None,
    interval: float = COMPRESS_INTERVAL_SECONDS,
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    """Every `interval` seconds, until cancelled, compress the months closed `after` seconds
    before `clock()`, and the days that ended `days_after` seconds before it (None: never)."""
    while True:
        await asyncio.sleep(interval)
        await compress_closed_months(
            url, emit, now=clock(), after=after, days_after=days_after, retry_in=interval
        )


async def compress_closed_months(
    url: str,
    emit: Emit,
    *,
    now: datetime,
    after: float | None,
    retry_in: float,
    days_after: float | None = None,
) -> CompressResult | None:
    """One try; what it compressed, or None after a failure (one PARTITIONS_ERROR line)."""
    stop = threading.Event()
    holder: list[psycopg.Connection[Any]] = []
    loop = asyncio.get_running_loop()

    def done(part: MonthCompression | DayCompression) -> None:  # in the thread: to the loop
        loop.call_soon_threadsafe(emit, EventKind.PARTITIONS, _done(part))

    # None: no month ends that early, or no day starts that early.
    never = datetime.min.replace(tzinfo=UTC)
    cut = never if after is None else now - timedelta(seconds=after)
    days = never if days_after is None else now - timedelta(seconds=days_after)

    def run() -> CompressResult:
        with connect(url) as conn:
            holder.append(conn)
            return compress_with_days(conn, cut, days, stopping=stop.is_set, progress=done)

    work = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()
        for conn in holder:
            conn.cancel_safe()
        await asyncio.wait([work])  # the month under way rolls back before the run ends
        raise
    except (BinpriceError, psycopg.Error) as exc:
        if isinstance(exc, AbortedError):
            return None
        error = database_error(url, exc) if isinstance(exc, psycopg.Error) else exc
        later = format_duration(timedelta(seconds=retry_in))
        emit(
            EventKind.PARTITIONS_ERROR,
            f"closed months or days were not compressed: {error} (tried again in {later})",
        )
        return None


def _done(part: MonthCompression | DayCompression) -> str:
    if isinstance(part, DayCompression):
        verb = "compressed" if part.action == "compress" else "merged rows into"
        return (
            f"{verb} day {part.day:%Y-%m-%d}: {part.trades:,} trades now {part.bytes:,} bytes "
            f"of blocks in {part.seconds:.1f} s"
        )
    month = part
    verb = "compressed" if month.action == "compress" else "merged late rows into"
    return (
        f"{verb} {month.month:%Y-%m}: {month.trades:,} trades, "
        f"{month.row_bytes:,} bytes of rows now {month.bytes:,} bytes of blocks"
    )
