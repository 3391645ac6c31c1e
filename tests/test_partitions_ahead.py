"""Live capture makes the months ahead: when `binprice ingest` starts and every interval after,
each try on a connection of its own, a busy or failed try one event line and never an error."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from binprice.db import connect_async
from binprice.db.copy import CopyEncoder
from binprice.db.partitions import (
    ENSURE_SQL,
    MONTHS_AHEAD,
    add_months,
    list_partitions,
    month_start,
)
from binprice.db.writer import TradeWriter
from binprice.events import EventKind
from binprice.ingest import run_ingest
from binprice.ingest.ahead import ensure_months_ahead, keep_months_ahead
from binprice.testing.exchange import TestExchange
from tests.fault_helpers import wait_until
from tests.ingest_helpers import Events, as_rows, exchange_config, stored_rows
from tests.test_partitions import _trade, month_rows, where

BUDGET_SECONDS = 60
FAR = datetime(2031, 5, 17, tzinfo=UTC)
SHORT = timedelta(milliseconds=50)


def _months_from(moment: datetime) -> list[str]:
    """The partitions ensure_ahead makes at `moment`: its month and the MONTHS_AHEAD after."""
    first = month_start(moment)
    return [f"trades_{add_months(first, i):%Y_%m}" for i in range(MONTHS_AHEAD + 1)]


def _partitions(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {p.name for p in list_partitions(conn)}


def _drop(url: str, names: list[str]) -> None:
    with psycopg.connect(url) as conn:
        for name in names:
            conn.execute(f"DROP TABLE IF EXISTS {name}")


async def test_ingest_makes_this_month_and_the_next_ones_when_it_starts(
    database_url: str, tmp_path: Path
) -> None:
    """On a database without this month's partition or the next two, a starting ingest makes
    them before its first write (one event line naming them): every trade is stored once, in
    its month, and none in DEFAULT."""
    ahead = _months_from(datetime.now(UTC))
    _drop(database_url, ahead)
    assert not set(ahead) & _partitions(database_url)
    events = Events()
    async with TestExchange(("BTCUSDT",), seed=5, rate=None, max_trades=400) as ex:
        config = exchange_config(ex, tmp_path, ("BTCUSDT",), max_trades=400)
        summary = await asyncio.wait_for(
            run_ingest(config, database_url, on_event=events), BUDGET_SECONDS
        )
        produced = ex.produced("BTCUSDT")
    assert summary.stored == 400
    assert events.of(EventKind.PARTITIONS) == [f"made the partitions ahead: {', '.join(ahead)}"]
    assert not events.of(EventKind.PARTITIONS_ERROR)
    assert set(ahead) <= _partitions(database_url)
    assert stored_rows(database_url) == as_rows(produced)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM trades_default").fetchone() == (0,)


async def test_a_try_behind_a_long_query_is_one_event_and_a_later_one_makes_the_months(
    database_url: str,
) -> None:
    """A query holding trades (DEFAULT too) in an open transaction: each try gives up after
    its lock timeout with one PARTITIONS_ERROR line and nothing made, and does not raise; the
    first try after the query ends makes the months."""
    events = Events()
    with psycopg.connect(database_url) as reader:
        reader.execute("SELECT count(*) FROM trades").fetchone()  # open until the rollback
        keeping = keep_months_ahead(
            database_url, events.emit, interval=0, clock=lambda: FAR, lock_timeout=SHORT
        )
        keeper = asyncio.create_task(keeping)
        try:
            async with asyncio.timeout(BUDGET_SECONDS):
                await events.wait_for(EventKind.PARTITIONS_ERROR, count=2)
            assert not set(_months_from(FAR)) & _partitions(database_url)
            reader.rollback()
            async with asyncio.timeout(BUDGET_SECONDS):
                await events.wait_for(EventKind.PARTITIONS)
        finally:
            keeper.cancel()
    assert events.of(EventKind.PARTITIONS) == [
        f"made the partitions ahead: {', '.join(_months_from(FAR))}"
    ]
    for message in events.of(EventKind.PARTITIONS_ERROR):
        assert "stayed locked by other sessions" in message and "no partition was made" in message
        assert "tried again in 0s" in message
    assert EventKind.PARTITIONS_ERROR.is_problem and not EventKind.PARTITIONS.is_problem


async def test_a_database_that_cannot_be_reached_is_one_event_not_an_error() -> None:
    """No server at the URL: the try reports it in one line and returns nothing made."""
    events = Events()
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    assert await ensure_months_ahead(url, events.emit) == []
    (message,) = events.of(EventKind.PARTITIONS_ERROR)
    assert message.startswith("the partitions ahead were not made: cannot reach PostgreSQL")
    assert "tried again in 1h" in message


def _waits_for_default(url: str) -> bool:
    """Whether some session waits for a lock on the DEFAULT partition."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = 'trades_default'::regclass "
            "AND NOT granted"
        ).fetchone()
    return row is not None and row[0] > 0


async def test_a_batch_on_its_way_to_default_when_its_month_is_made_goes_to_the_month(
    database_url: str,
) -> None:
    """A month attached (not yet committed) while a writer's COPY routes its rows to DEFAULT:
    the COPY waits for DEFAULT, then fails DEFAULT's new partition constraint; the writer
    writes the batch again, into the new month, once."""
    month = datetime(2032, 3, 1, tzinfo=UTC)
    trades = [_trade(r) for r in month_rows("BTCUSDT", 1, month, count=24)]
    writer = TradeWriter(await connect_async(database_url))
    try:
        with psycopg.connect(database_url) as maker:
            maker.execute(ENSURE_SQL, (month, month + timedelta(days=1))).fetchall()
            write = asyncio.create_task(writer.write(CopyEncoder().batch(trades)))
            await wait_until(lambda: _waits_for_default(database_url), BUDGET_SECONDS)
            maker.commit()
        counts, _ = await asyncio.wait_for(write, BUDGET_SECONDS)
    finally:
        await writer.close()
    assert counts == {"BTCUSDT": 24}
    assert set(where(database_url).values()) == {"trades_2032_03"}
