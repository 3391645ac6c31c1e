"""`binprice ingest --since DAY --stream aggTrade` against the test archive's aggTrades files,
the test exchange's `aggTrades` and `@aggTrade`, and real PostgreSQL (#19 item 4): the archived
days' aggregates, the days not published yet from `aggTrades?fromId=` (no API key, any market),
then the stream, on one line of aggregate ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from binprice.db.gaps import list_gaps, verify_gaps
from binprice.events import EventKind, IngestEvent
from binprice.ingest import Recorder, run_ingest
from binprice.kinds import TradeKind
from binprice.markets import Market
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.exchange import TestExchange
from binprice.testing.timeline import HISTORY_TRADES_PER_DAY, History
from tests.fault_helpers import wait_until
from tests.ingest_helpers import exchange_config
from tests.test_agg_ingest import served_aggs, stored_aggs

AGG = TradeKind.AGG_TRADES
SYMBOL = "BTCUSDT"
SEED = 47
#: A guard against a hang, not a measured duration.
GUARD_SECONDS = 60


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM], ids=["spot", "usdm"])
async def test_ingest_since_stream_aggtrade_goes_from_the_archive_to_live_on_one_id_line(
    market: Market, database_url: str, tmp_path: Path
) -> None:
    """Two archived days of aggTrades files, yesterday and today until the exchange started
    from `aggTrades?fromId=` (no key), then the `@aggTrade` stream: every aggregate id from the
    first archived one to the exchange's newest stored once, the live ones with the
    exchange's exact fields; `gaps --verify --kind aggTrades` clean, every gap filled, the
    imports of kind 1, no trade stored."""
    today = datetime.now(UTC).date()
    since = today - timedelta(days=3)
    published = ArchiveMarket.generate(
        [SYMBOL],
        since,
        today - timedelta(days=1),
        seed=SEED,
        trades_per_day=HISTORY_TRADES_PER_DAY,
        market=market,
    )
    history = History(SEED, market)
    events: list[IngestEvent] = []
    async with TestExchange((SYMBOL,), seed=SEED, rate=300, market=market) as ex:
        ex.rest.history = history
        async with ArchiveServer(published) as archive:
            archived = {"archive_url": archive.url, "downloads_dir": tmp_path / "downloads"}
            config = exchange_config(
                ex, tmp_path, (SYMBOL,), market=market, kind=AGG, since=since, **archived
            )
            recorder, stop = Recorder(), asyncio.Event()
            run = asyncio.create_task(
                run_ingest(
                    config, database_url, stop=stop, recorder=recorder, on_event=events.append
                )
            )
            aggregates = ex.generators[SYMBOL].aggregates

            def newest_stored() -> bool:
                rows = stored_aggs(database_url, market)
                return bool(rows) and rows[-1][1] == aggregates.first_id + len(aggregates) - 1

            try:
                await wait_until(
                    lambda: recorder.summary().stored >= 300 or run.done(), GUARD_SECONDS
                )
                ex.paused.add(SYMBOL)
                await wait_until(lambda: newest_stored() or run.done(), GUARD_SECONDS)
            finally:
                stop.set()
            await asyncio.wait_for(run, GUARD_SECONDS)
    rows = stored_aggs(database_url, market)
    ids = [r[1] for r in rows]
    first_live = aggregates.first_id
    assert ids == list(range(ids[0], ids[-1] + 1))
    assert ids[0] == history.day(SYMBOL, since).aggregates.first_id
    assert ids[-1] == first_live + len(aggregates) - 1
    assert first_live - ids[0] > 2 * HISTORY_TRADES_PER_DAY  # two archived days and REST's
    assert [r for r in rows if r[1] >= first_live] == served_aggs(ex, SYMBOL, first_live, ids[-1])
    assert [e for e in events if e.kind is EventKind.HISTORY and "history since" in e.message]
    with psycopg.connect(database_url) as conn:
        assert verify_gaps(conn, [SYMBOL], market=market, kind=AGG).ok
        gaps = list_gaps(conn, [SYMBOL], market=market, kind=AGG)
        imports = conn.execute("SELECT DISTINCT kind, state FROM imports").fetchall()
        trades = conn.execute("SELECT count(*) FROM trades").fetchone()
    assert not [g for g in gaps if g.state != "filled"], gaps
    assert imports == [(1, "done")]
    assert trades == (0,)
