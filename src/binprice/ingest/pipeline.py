"""The ingest run: readers → tracker → bounded buffer → batch writer, owned by one TaskGroup.

Shutdown order (stop event, --duration, --max-trades): readers stop reading, then the writer
drains everything received and commits it, then the run returns its summary. If the database is
down while stopping, what cannot be committed within the grace period goes to the disk spool and
is committed by the next run: a received trade is never dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from binprice.binance import Trade, split_into_connections
from binprice.errors import DatabaseError
from binprice.ingest.backfill import Backfiller
from binprice.ingest.backoff import Backoff
from binprice.ingest.buffer import TradeBuffer
from binprice.ingest.config import IngestConfig
from binprice.ingest.events import Emit, EventSink, IngestEvent
from binprice.ingest.rest import RestClient
from binprice.ingest.spool import Spool
from binprice.ingest.stats import LATENCY_BUCKETS_MS, IngestStats, IngestSummary
from binprice.ingest.stream import ConnectionGroup, StreamPolicy
from binprice.ingest.tracker import Tracker
from binprice.ingest.writer import TradeWriter

#: While stopping with the database down, how long the writer keeps trying before spooling.
SHUTDOWN_GRACE_SECONDS = 2.0


async def run_ingest(
    config: IngestConfig,
    database_url: str,
    *,
    stop: asyncio.Event | None = None,
    on_event: Callable[[IngestEvent], None] | None = None,
    stats: IngestStats | None = None,
    policy: StreamPolicy | None = None,
    on_stored: Callable[[list[Trade]], None] | None = None,
) -> IngestSummary:
    """Ingest until `stop` is set, `config.duration` passes or `config.max_trades` are stored."""
    stats = stats if stats is not None else IngestStats()
    stop = stop if stop is not None else asyncio.Event()
    policy = policy if policy is not None else StreamPolicy()
    emit = EventSink(on_event)
    buffer = TradeBuffer(Spool(config.spool_dir), config.memory_limit, stats)
    writer = await TradeWriter.connect(database_url)
    try:
        last_ids = await writer.last_trade_ids(config.symbols)
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, config.rest_url)
            await rest.validate_symbols(config.symbols)
            backfiller: Backfiller
            tracker = Tracker(
                buffer,
                stats,
                on_gap=lambda s, a, b: backfiller.request(s, a, b),
                max_trades=config.max_trades,
                on_limit=stop.set,
            )
            backfiller = Backfiller(rest, tracker, stats, emit)
            for symbol in config.symbols:
                tracker.start(symbol, last_ids.get(symbol))
                stats.symbol(symbol).last_trade_id = last_ids.get(symbol)
            stats.started = time.monotonic()
            sink = _Sink(writer, database_url, buffer, stats, emit, config, on_stored)
            reading_done = asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                write_task = tg.create_task(sink.run(reading_done))
                readers = [
                    tg.create_task(
                        ConnectionGroup(
                            session, config.ws_url, chunk, tracker, stats, emit, stop, policy
                        ).run()
                    )
                    for chunk in split_into_connections(
                        config.symbols, config.streams_per_connection
                    )
                ]
                backfill_task = tg.create_task(backfiller.run())
                if config.duration is not None:
                    tg.create_task(_stop_after(config.duration, stop))
                await _until_stopped(stop, readers, write_task)
                stop.set()
                for task in readers:
                    await task
                backfill_task.cancel()
                reading_done.set()
            writer = sink.writer
    finally:
        buffer.spill()  # anything not committed survives in the spool for the next run
        if not writer.closed:
            await writer.close()
    summary = stats.summary()
    emit("stopped", f"stored {summary.stored} trades")
    return summary


async def _until_stopped(
    stop: asyncio.Event, readers: list[asyncio.Task[None]], writer: asyncio.Task[None]
) -> None:
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopped, writer, *readers], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    for task in (writer, *readers):
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _stop_after(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()


class _Sink:
    """The writer task: takes batches from the buffer and commits them, through outages."""

    def __init__(
        self,
        writer: TradeWriter,
        url: str,
        buffer: TradeBuffer,
        stats: IngestStats,
        emit: Emit,
        config: IngestConfig,
        on_stored: Callable[[list[Trade]], None] | None,
    ) -> None:
        self.writer = writer
        self._on_stored = on_stored
        self._url = url
        self._buffer = buffer
        self._stats = stats
        self._emit = emit
        self._config = config

    async def run(self, reading_done: asyncio.Event) -> None:
        buffer = self._buffer
        config = self._config
        while True:
            if buffer.empty:
                if reading_done.is_set():
                    return
                waiter = asyncio.ensure_future(reading_done.wait())
                try:
                    await asyncio.wait(
                        [waiter, asyncio.ensure_future(buffer.wait())],
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
                continue
            if config.flush_interval and len(buffer) < config.max_batch:
                await asyncio.sleep(config.flush_interval)
            batch, chunk = buffer.take(config.max_batch)
            if not await self._store(batch, chunk is not None, reading_done):
                return
            buffer.done(chunk)

    async def _store(self, batch: list[Trade], spooled: bool, reading_done: asyncio.Event) -> bool:
        """Commit `batch`, retrying through database outages. False: gave up while stopping
        (the batch and the rest of memory are then in the spool)."""
        import psycopg

        backoff = Backoff(initial=0.2, cap=5.0)
        gave_up_at: float | None = None
        while True:
            try:
                if self.writer.closed:
                    self.writer = await TradeWriter.connect(self._url)
                inserted, committed_ms = await self.writer.write(batch)
                break
            except (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError) as exc:
                self._stats.db_errors += 1
                if not self._stats.db_down:
                    self._stats.db_down = True
                    self._emit("db_down", f"database unavailable, retrying: {_one_line(exc)}")
                if not self.writer.closed:
                    await self.writer.close()
                if reading_done.is_set():
                    gave_up_at = gave_up_at or time.monotonic()
                    if time.monotonic() - gave_up_at > SHUTDOWN_GRACE_SECONDS:
                        if not spooled:
                            self._buffer.spool.append(batch)
                        self._buffer.spill()
                        self._emit("spooled", "database still down; received trades kept in spool")
                        return False
                await asyncio.sleep(backoff.next_delay())
            except psycopg.Error as exc:
                if not spooled:
                    self._buffer.spool.append(batch)
                raise DatabaseError(
                    f"the database rejected a batch ({_one_line(exc)}); it is kept in the "
                    f"spool {self._buffer.spool.directory} and retried on the next start"
                ) from None
        if self._stats.db_down:
            self._stats.db_down = False
            self._emit("db_up", "database available again")
        self._account(batch, inserted, committed_ms)
        if self._on_stored is not None:
            self._on_stored(batch)
        return True

    def _account(self, batch: list[Trade], inserted: dict[str, int], committed_ms: int) -> None:
        stats = self._stats
        stats.batches += 1
        for symbol, n in inserted.items():
            stats.symbol(symbol).stored += n
        latest: dict[str, Trade] = {}
        hist = stats.latency
        cap = LATENCY_BUCKETS_MS
        for t in batch:
            latest[t.symbol] = t
            lag = committed_ms - t.time_ms
            hist[cap if lag > cap else (lag if lag > 0 else 0)] += 1
        for symbol, t in latest.items():
            c = stats.symbol(symbol)
            if c.last_trade_id is None or t.trade_id >= c.last_trade_id:
                c.last_trade_id = t.trade_id
                c.last_price = t.price
                c.last_time_ms = t.time_ms
                c.lag_ms = committed_ms - t.time_ms


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


def default_spool_dir(data_dir: Path) -> Path:
    return data_dir / "spool"
