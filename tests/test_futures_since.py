"""`binprice ingest --since DAY --market usdm|coinm` against the test archive's futures folders,
the test exchange's futures REST and streams, and real PostgreSQL (#19): the archived days,
the days not published yet from the market's `historicalTrades` (with the API key), then the
stream, on one id line; without a key, the unpublished part older than the newest trades is
recorded as skipped, said once with the hint."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from binprice.db.gaps import list_gaps, verify_gaps
from binprice.events import EventKind, IngestEvent
from binprice.ingest import IngestConfig, Recorder, run_ingest
from binprice.markets import Market
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.exchange import TestExchange
from binprice.testing.timeline import HISTORY_TRADES_PER_DAY, History
from tests.fault_helpers import wait_until
from tests.ingest_helpers import as_rows, stored_rows

KEY = "k3yWithLettersAndDigits0123456789"
SYMBOL = {Market.USDM: "BTCUSDT", Market.COINM: "BTCUSD_PERP"}
SEED = 41
#: A guard against a hang, not a measured duration.
GUARD_SECONDS = 60


def _history(market: Market, symbol: str, start: date, end: date) -> ArchiveMarket:
    """The market's days `start <= day < end`, as the archive (and REST below the exchange's
    first id) has them."""
    return ArchiveMarket.generate(
        [symbol], start, end, seed=SEED, trades_per_day=HISTORY_TRADES_PER_DAY, market=market
    )


async def _since(ex: TestExchange, config: IngestConfig, url: str) -> list[IngestEvent]:
    """Run `ingest --since` until live trades are stored, then pause the exchange and stop
    once its newest trade is stored; the run's events."""
    symbol, market = config.symbols[0], config.market
    events: list[IngestEvent] = []
    recorder, stop = Recorder(), asyncio.Event()
    run = asyncio.create_task(
        run_ingest(config, url, stop=stop, recorder=recorder, on_event=events.append)
    )

    def newest_stored() -> bool:
        rows = stored_rows(url, market)
        return bool(rows) and rows[-1][1] == ex.produced(symbol)[-1].trade_id

    try:
        await wait_until(lambda: recorder.summary().stored >= 300 or run.done(), GUARD_SECONDS)
        ex.paused.add(symbol)
        await wait_until(lambda: newest_stored() or run.done(), GUARD_SECONDS)
    finally:
        stop.set()
    await asyncio.wait_for(run, GUARD_SECONDS)
    return events


async def _ingest_since(
    market: Market, url: str, tmp_path: Path, since: date, api_key: str | None = None
) -> tuple[TestExchange, ArchiveMarket, list[IngestEvent]]:
    """`ingest --since` of the market's symbol against an exchange of the history's seed and
    an archive of the days `since` to the day before yesterday: the (stopped) exchange, the
    archived days and the run's events."""
    symbol = SYMBOL[market]
    published = _history(market, symbol, since, datetime.now(UTC).date() - timedelta(days=1))
    async with TestExchange((symbol,), seed=SEED, rate=300, market=market) as ex:
        ex.rest.history = History(SEED, market)
        async with ArchiveServer(published) as archive:
            config = IngestConfig(
                symbols=(symbol,),
                market=market,
                api_key=api_key,
                ws_url=ex.ws_url,
                rest_url=ex.rest_url,
                spool_dir=tmp_path / "spool",
                since=since,
                archive_url=archive.url,
                downloads_dir=tmp_path / "downloads",
            )
            events = await _since(ex, config, url)
    return ex, published, events


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM], ids=["usdm", "coinm"])
async def test_ingest_since_on_a_futures_market_goes_from_the_archive_to_live_on_one_id_line(
    market: Market, database_url: str, tmp_path: Path
) -> None:
    """Two archived days of the futures folder, yesterday and today until the exchange
    started from `historicalTrades` with the key, then the stream: every id from the first
    archived one to the exchange's newest stored once with the market's exact fields,
    `gaps --verify` clean, nothing in spot."""
    symbol = SYMBOL[market]
    today = datetime.now(UTC).date()
    since = today - timedelta(days=3)
    ex, published, events = await _ingest_since(market, database_url, tmp_path, since, KEY)
    first_live = ex.generators[symbol].first_id
    history = _history(market, symbol, since, today + timedelta(days=1))
    before = [t for t in history.generators[symbol].trades() if t.trade_id < first_live]
    expected = as_rows([*before, *ex.produced(symbol)])
    rows = stored_rows(database_url, market)
    assert rows == expected
    assert rows[0][1] == published.generators[symbol].trades()[0].trade_id
    assert len(before) > 2 * HISTORY_TRADES_PER_DAY  # two archived days and yesterday's REST
    assert not [e for e in events if e.kind is EventKind.GAP_SKIPPED]
    with psycopg.connect(database_url) as conn:
        assert verify_gaps(conn, market=market).ok
        gaps = list_gaps(conn, [symbol], market=market)
    assert not [g for g in gaps if g.state != "filled"], gaps
    assert stored_rows(database_url, Market.SPOT) == []


async def test_ingest_since_on_usdm_without_a_key_records_what_needs_one_as_skipped(
    database_url: str, tmp_path: Path
) -> None:
    """No API key: the archived days are imported, `historicalTrades` is never asked; the
    unpublished days older than the newest trades are recorded as skipped, said once with
    the hint, and the run streams on with no error."""
    market, symbol = Market.USDM, "BTCUSDT"
    since = datetime.now(UTC).date() - timedelta(days=3)
    ex, published, events = await _ingest_since(market, database_url, tmp_path, since)
    assert not ex.rest.keys_seen
    archived = as_rows(published.generators[symbol].trades())
    live = as_rows(ex.produced(symbol))
    skipped = [e.message for e in events if e.kind is EventKind.GAP_SKIPPED]
    assert len(skipped) == 1 and "set BINPRICE_API_KEY" in skipped[0], skipped
    assert not [e for e in events if e.kind in (EventKind.BACKFILL_ERROR, EventKind.FATAL)]
    with psycopg.connect(database_url) as conn:
        gaps = list_gaps(conn, [symbol], market=market)
        assert verify_gaps(conn, market=market).ok
    # Yesterday and today until the exchange started (and whatever it traded before the
    # stream, beyond the newest trades) only historicalTrades serves.
    [(first, last)] = [(g.first_id, g.last_id) for g in gaps if g.state == "skipped"]
    assert not [g for g in gaps if g.state not in ("skipped", "filled")], gaps
    assert first == archived[-1][1] + 1 and last >= live[0][1] - 1
    assert stored_rows(database_url, market) == archived + [r for r in live if r[1] > last]
