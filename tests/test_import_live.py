"""Imports and live capture share one timeline: the same stored text, no duplicates, no holes."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from binprice.history import FileStatus, ImportOptions, import_history
from binprice.ingest import run_ingest
from binprice.testing.archive import ArchiveFaults, ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from tests.ingest_helpers import exchange_config
from tests.test_import import LATER, SYMBOL, expected_text, gaps, stored_text, verified


def _options(
    archive: ArchiveServer, market: ArchiveMarket, tmp: Path, **kw: object
) -> ImportOptions:
    return ImportOptions(
        (SYMBOL,),
        start=market.start,
        end=market.end,
        archive_url=archive.url,
        spool_dir=tmp / "downloads",
        today=LATER,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("unit", ["ms", "us"])
async def test_an_imported_trade_is_stored_exactly_as_live_capture_stores_it(
    database_url: str, empty_database_url: str, tmp_path: Path, unit: str
) -> None:
    """Live-ingest trades into one database, import the same trades from an archive (ms or
    µs file) into another: every column reads back identical, price and quantity text too."""
    async with TestExchange([SYMBOL], seed=11, rate=None, max_trades=600) as ex:
        config = exchange_config(ex, tmp_path, (SYMBOL,), max_trades=600)
        await asyncio.wait_for(run_ingest(config, database_url), 60)
        produced = ex.produced(SYMBOL)
    live = stored_text(database_url)
    assert live == expected_text(produced)
    from binprice.db import migrations

    migrations.upgrade(empty_database_url)
    market = ArchiveMarket.from_trades({SYMBOL: produced})
    switch = date(2000, 1, 1) if unit == "us" else date(9999, 1, 1)
    async with ArchiveServer(market, ArchiveFaults(micros_from=switch)) as archive:
        summary = await import_history(_options(archive, market, tmp_path), empty_database_url)
    assert summary.ok
    assert stored_text(empty_database_url) == live


async def test_a_live_run_started_earlier_and_an_import_added_later_meet(
    database_url: str, tmp_path: Path
) -> None:
    """Live capture holds a stretch of today; the archive of today is imported afterwards:
    every trade once, the tail the stopped run recorded filled by the import, the
    completeness check clean."""
    async with TestExchange([SYMBOL], seed=12, rate=3000) as ex:
        async with asyncio.timeout(30):
            await ex.wait_produced(SYMBOL, 300)
        config = exchange_config(ex, tmp_path, (SYMBOL,), max_trades=400)
        await asyncio.wait_for(run_ingest(config, database_url), 60)
        async with asyncio.timeout(30):
            await ex.wait_produced(SYMBOL, len(ex.produced(SYMBOL)) + 300)
        ex.paused.add(SYMBOL)
        produced = ex.produced(SYMBOL)
    live = stored_text(database_url)
    assert live[0][1] > produced[0].trade_id and live[-1][1] < produced[-1].trade_id
    market = ArchiveMarket.from_trades({SYMBOL: produced})
    async with ArchiveServer(market) as archive:
        summary = await import_history(_options(archive, market, tmp_path), database_url)
    [result] = summary.symbols[0].files
    assert result.status is FileStatus.LOADED and result.inserted == len(produced) - len(live)
    assert stored_text(database_url) == expected_text(produced)
    assert [state for *_, state in gaps(database_url)] == ["filled"]  # the stop's tail
    assert verified(database_url)


async def test_ids_neither_the_archive_nor_rest_has_are_recorded_as_a_hole(
    database_url: str, tmp_path: Path
) -> None:
    """The exchange lost five ids for good; the archive lacks them too: with --rest-tail
    they are asked of REST, found absent, and recorded as a hole, so --verify is clean."""
    async with TestExchange([SYMBOL], seed=13, rate=3000, faults=Faults()) as ex:
        async with asyncio.timeout(30):
            await ex.wait_produced(SYMBOL, 100)
            ex.faults.lose_next = 5
            await ex.wait_produced(SYMBOL, 300)
        ex.paused.add(SYMBOL)
        lost = ex.never_served(SYMBOL)
        kept = [t for t in ex.produced(SYMBOL) if t.trade_id not in lost]
        market = ArchiveMarket.from_trades({SYMBOL: kept})
        async with ArchiveServer(market) as archive:
            opts = _options(archive, market, tmp_path, rest_tail=True, rest_url=ex.rest_url)
            summary = await import_history(opts, database_url)
    assert summary.ok and len(lost) == 5
    assert stored_text(database_url) == expected_text(kept)
    assert gaps(database_url) == [(min(lost), max(lost), "hole")]
    assert verified(database_url)


async def test_ingest_since_goes_from_an_empty_database_to_live_on_one_id_line(
    database_url: str, tmp_path: Path
) -> None:
    """`binprice ingest --since DATE`: the archive's past days (verified), the unpublished
    rest from REST, then the stream: every id the exchange made, from its first, exactly once,
    and `gaps --verify` clean."""
    from datetime import UTC, datetime, timedelta

    from binprice.db.gaps import verify_gaps
    from binprice.ingest import IngestConfig
    from binprice.ingest.recorder import Recorder
    from binprice.testing.generator import US_PER_MS
    from tests.fault_helpers import assert_complete, complete_from_first, wait_until

    today = datetime.now(UTC).date()
    since = today - timedelta(days=3)
    async with TestExchange([SYMBOL], seed=21, rate=300) as ex:
        # Three past days of the same market the exchange goes on with (ids continue).
        gen = ex.generators[SYMBOL]
        past = []
        for day in range(3):
            midnight = datetime.combine(since + timedelta(days=day), datetime.min.time(), UTC)
            for slot in range(40):
                at_ms = int((midnight + timedelta(minutes=36 * slot + 1)).timestamp() * 1000)
                gen.produce(1, at_ms * US_PER_MS, limit=1)
        past = ex.produced(SYMBOL)
        market = ArchiveMarket.from_trades({SYMBOL: past})
        stats = Recorder()
        stop = asyncio.Event()
        async with ArchiveServer(market) as archive:
            config = IngestConfig(
                symbols=(SYMBOL,),
                ws_url=ex.ws_url,
                rest_url=ex.rest_url,
                spool_dir=tmp_path / "spool",
                since=since,
                archive_url=archive.url,
                downloads_dir=tmp_path / "downloads",
            )
            run = asyncio.create_task(run_ingest(config, database_url, stop=stop, recorder=stats))
            await wait_until(lambda: stats.summary().stored >= 300, 60)  # live trades arrive
            ex.paused.add(SYMBOL)
            await wait_until(lambda: complete_from_first(ex, database_url, (SYMBOL,)), 30)
            stop.set()
            summary = await asyncio.wait_for(run, 30)
        numbers = assert_complete("ingest-since", ex, database_url, (SYMBOL,), summary)
    assert numbers["stored"] == len(ex.produced(SYMBOL)) > len(past) == 120
    first = stored_text(database_url)[0]
    assert first[1] == past[0].trade_id  # from the very first trade of the archive
    import psycopg

    with psycopg.connect(database_url) as conn:
        assert verify_gaps(conn).ok
