"""#20's collision, end to end: the test archive imported into a database the test exchange
filled conflicts nowhere, and the newest trade stays the exchange's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from binprice.history import ImportOptions, import_history
from binprice.ingest import run_ingest
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.exchange import TestExchange
from binprice.testing.timeline import HISTORY_TRADES_PER_DAY
from tests.ingest_helpers import exchange_config
from tests.test_import import SYMBOL, expected_text, stored_text

SEED = 3


async def test_the_archive_imports_beside_live_trades_without_a_conflict(
    database_url: str, tmp_path: Path
) -> None:
    """Live capture first, then two archived days of the same seed (the README's order): every
    stored id is one trade of one source, none is stored twice, the live trades are untouched
    and the newest trade is still the newest live one."""
    async with TestExchange([SYMBOL], seed=SEED, rate=None, max_trades=300) as ex:
        config = exchange_config(ex, tmp_path, (SYMBOL,), max_trades=300)
        await asyncio.wait_for(run_ingest(config, database_url), 60)
        live = ex.produced(SYMBOL)
    # The two days before yesterday: after the fixtures' day, where a history that ignored
    # the exchange's start would reuse the exchange's ids.
    today = datetime.now(UTC).date()
    market = ArchiveMarket.generate(
        [SYMBOL],
        today - timedelta(days=3),
        today - timedelta(days=1),
        seed=SEED,
        trades_per_day=HISTORY_TRADES_PER_DAY,
    )
    archived = list(market.generators[SYMBOL].trades())
    async with ArchiveServer(market) as archive:
        options = ImportOptions(
            (SYMBOL,),
            start=market.start,
            end=market.end,
            archive_url=archive.url,
            spool_dir=tmp_path / "downloads",
            today=today,
        )
        summary = await import_history(options, database_url)
    assert summary.ok
    assert stored_text(database_url) == expected_text([*archived, *live])
    with psycopg.connect(database_url) as conn:
        count, distinct, newest, highest = conn.execute(
            "SELECT count(*), count(DISTINCT trade_id), "
            "(SELECT trade_id FROM trades ORDER BY timestamp DESC, trade_id DESC LIMIT 1), "
            "max(trade_id) FROM trades WHERE symbol = %s",
            (SYMBOL,),
        ).fetchone()
    assert count == distinct == len(archived) + len(live)
    # Ids grow with time across both sources: the next ingest resumes after the live trades.
    assert newest == highest == live[-1].trade_id
