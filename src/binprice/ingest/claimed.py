"""A capture run as the library starts it: its symbols claimed for the run (another run on the
same symbols is told of), its spool in the data directory, a summary every tick for a live view."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from binprice._sync import bridge
from binprice.db import connect_async, describe
from binprice.db.claims import ALL, claim_symbols
from binprice.events import EventKind, IngestEvent
from binprice.exchange.protocol import SeriesRecord
from binprice.ingest.config import IngestConfig
from binprice.ingest.pipeline import run_ingest
from binprice.ingest.recorder import Recorder
from binprice.ingest.spool import spool_root
from binprice.ingest.stats import IngestSummary
from binprice.kinds import TradeKind


async def run_claimed(
    config: IngestConfig,
    url: str,
    data_dir: Path,
    *,
    migrated: bool,
    tick_seconds: float,
    stop: asyncio.Event | None = None,
    thread_stop: threading.Event | None = None,
    on_event: Callable[[IngestEvent], None] | None = None,
    on_tick: Callable[[IngestSummary], None] | None = None,
    on_stored: Callable[[list[SeriesRecord]], None] | None = None,
) -> IngestSummary:
    """Run `config` against `url` (whose schema is at head: `migrated` says whether this run
    put it there) until `stop` or `thread_stop` is set or a limit is reached."""
    if on_event is not None:
        state = "migrated to" if migrated else "is at"
        where = f"database at {describe(url)} {state} the newest schema"
        on_event(IngestEvent(time.time(), EventKind.MIGRATED, where))
    spool_dir = spool_root(data_dir, url)
    if config.market.is_futures:  # a market's COPY rows are its own: never replayed in another
        spool_dir = spool_dir / config.market.value
    if config.kind is TradeKind.AGG_TRADES:  # ... and so are a kind's (`agg_trades`' columns)
        spool_dir = spool_dir / config.kind.value
    config = replace(config, spool_dir=spool_dir)
    stop = stop if stop is not None else asyncio.Event()
    recorder = Recorder()
    watcher = None if thread_stop is None else bridge(thread_stop, stop)
    claims = await connect_async(url)  # held for the run: its symbols' claims
    try:
        shared = await claim_symbols(claims, config.symbols or [ALL], config.market, config.kind)
        if shared and on_event is not None:
            on_event(IngestEvent(time.time(), EventKind.SHARED, shared_message(shared)))
        async with asyncio.TaskGroup() as tasks, _ticking(tasks, on_tick, recorder, tick_seconds):
            return await run_ingest(
                config, url, stop=stop, on_event=on_event, recorder=recorder, on_stored=on_stored
            )
    except BaseExceptionGroup as group:  # the run's own error, as if awaited alone
        raise group.exceptions[0] from None
    finally:
        await claims.close()
        if watcher is not None:
            watcher.cancel()


def shared_message(shared: list[str]) -> str:
    """The one line a run says when another run captures some of its symbols."""
    what = "every symbol (--all)" if shared == [ALL] else ", ".join(shared)
    return (
        f"another binprice ingest is already capturing {what} into this database: each trade "
        "is still stored once, but at twice the cost; stop one of them, unless two runs are "
        "meant (for redundancy)"
    )


@asynccontextmanager
async def _ticking(
    tasks: asyncio.TaskGroup,
    on_tick: Callable[[IngestSummary], None] | None,
    recorder: Recorder,
    seconds: float,
) -> AsyncIterator[None]:
    """`on_tick` given the run's summary every `seconds` while the block runs."""
    ticker = None if on_tick is None else tasks.create_task(_tick(on_tick, recorder, seconds))
    try:
        yield
    finally:
        if ticker is not None:
            ticker.cancel()


async def _tick(
    on_tick: Callable[[IngestSummary], None], recorder: Recorder, seconds: float
) -> None:
    while True:
        await asyncio.sleep(seconds)
        on_tick(recorder.summary())
