"""Ingest compresses closed months on its own: one owned task, on an injected clock, that
stops cleanly (the month under way rolls back) when the run stops."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest

import binprice
from binprice.db.compress import compressed_months
from binprice.events import EventKind
from binprice.ingest.compressing import compress_closed_months, keep_compressing
from tests.fault_helpers import HANG_GUARD_SECONDS, wait_until
from tests.test_compress import MAY, TRADES_SQL, _filled
from tests.test_compress_kill import WAITING_SQL

DAYS_3 = timedelta(days=3).total_seconds()


def test_a_month_is_compressed_once_it_closed_long_enough_ago(database_url: str) -> None:
    """At 2 days after April the month waits; at 3 days it is compressed, one event line."""
    _filled(database_url).close()
    events: list[tuple[EventKind, str]] = []

    def emit(kind: EventKind, text: str) -> None:
        events.append((kind, text))

    async def at(now_after_may: timedelta) -> None:
        await compress_closed_months(
            database_url, emit, now=MAY + now_after_may, after=DAYS_3, retry_in=3600
        )

    asyncio.run(at(timedelta(days=2)))
    assert events == []
    asyncio.run(at(timedelta(days=3)))
    assert [(k, t.split(":")[0]) for k, t in events] == [
        (EventKind.PARTITIONS, "compressed 2026-04")
    ]
    with psycopg.connect(database_url) as conn:
        assert [m.month for m in compressed_months(conn)] == [MAY.replace(month=4)]


def test_the_task_compresses_each_interval_and_stops_when_cancelled(database_url: str) -> None:
    """keep_compressing runs on its interval; cancelled, it ends."""
    _filled(database_url).close()

    async def run() -> None:
        done = asyncio.Event()

        def emit(kind: EventKind, text: str) -> None:
            if kind is EventKind.PARTITIONS:
                done.set()

        later = MAY + timedelta(days=9)
        task = asyncio.create_task(
            keep_compressing(database_url, emit, after=DAYS_3, interval=0, clock=lambda: later)
        )
        await done.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    with psycopg.connect(database_url) as conn:
        assert len(compressed_months(conn)) == 1


def test_stopping_mid_month_rolls_it_back_before_the_task_ends(database_url: str) -> None:
    """Cancelled while the month's transaction waits on a lock: it is cancelled on the server,
    the month rolls back (rows intact, no blocks), then the task ends."""
    with _filled(database_url) as conn:
        rows = conn.execute(TRADES_SQL.format("trades")).fetchall()
    holder = psycopg.connect(database_url)
    holder.execute("LOCK TABLE trade_minutes IN ACCESS EXCLUSIVE MODE")

    async def run() -> None:
        task = asyncio.create_task(
            compress_closed_months(
                database_url,
                lambda kind, text: None,
                now=MAY + timedelta(days=9),
                after=DAYS_3,
                retry_in=3600,
            )
        )

        def waiting() -> bool:
            return holder.execute(WAITING_SQL, ("trade_minutes",)).fetchone() is not None

        await wait_until(waiting, HANG_GUARD_SECONDS)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(run())
    finally:
        holder.close()
    with psycopg.connect(database_url) as conn:
        assert conn.execute(TRADES_SQL.format("trades")).fetchall() == rows
        assert compressed_months(conn) == []
        assert conn.execute("SELECT to_regclass('trade_blocks_2026_04')").fetchone() == (None,)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("3d", DAYS_3), ("off", None), ("0", None), (0, None), (None, None), ("12h", 43_200.0)],
)
def test_compress_after_option(given: object, seconds: float | None) -> None:
    """`--compress-after`: a duration, or 0 / off for never; 3 days unless told."""
    store = binprice.connect("postgresql://unused@/x")
    config = store.ingest_config(["BTCUSDT"], compress_after=given)
    assert config.compress_after == seconds
    assert store.ingest_config(["BTCUSDT"]).compress_after == DAYS_3
