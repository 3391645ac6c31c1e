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

import aiohttp

from binprice.binance import Trade, split_into_connections
from binprice.errors import BinpriceError
from binprice.ingest.backfill import Backfiller
from binprice.ingest.buffer import TradeBuffer
from binprice.ingest.config import IngestConfig
from binprice.ingest.events import EventSink, IngestEvent
from binprice.ingest.gaplog import GapLog, resume, settle_periodically
from binprice.ingest.rest import RestClient
from binprice.ingest.sink import Sink
from binprice.ingest.spool import Spool
from binprice.ingest.stats import IngestStats, IngestSummary
from binprice.ingest.stream import HANDSHAKE_TIMEOUT_SECONDS, ConnectionGroup, StreamPolicy
from binprice.ingest.tracker import Tracker
from binprice.ingest.writer import TradeWriter

#: How long a stop waits for the last commits before leaving the rest to the spool
#: (Ctrl+C must end the run within 5 s whatever the database does).
SHUTDOWN_DEADLINE_SECONDS = 2.5
#: ... and for recording whether the gaps it backfilled are filled.
SETTLE_DEADLINE_SECONDS = 1.0


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
        return await _run(
            config, database_url, stop, emit, stats, policy, on_stored, buffer, writer
        )
    except BaseExceptionGroup as group:
        raise _first_error(group) from None
    finally:
        buffer.spill()  # anything not committed survives in the spool for the next run


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a user should see from a TaskGroup failure: ours first, else the first."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, BinpriceError)), leaves[0])


async def _run(
    config: IngestConfig,
    database_url: str,
    stop: asyncio.Event,
    emit: EventSink,
    stats: IngestStats,
    policy: StreamPolicy,
    on_stored: Callable[[list[Trade]], None] | None,
    buffer: TradeBuffer,
    writer: TradeWriter,
) -> IngestSummary:
    gaplog = GapLog(database_url, emit)
    sink = Sink(
        writer, database_url, buffer, stats, emit, config, on_stored, before_commit=gaplog.flush
    )
    try:
        last_ids = await writer.last_trade_ids(config.symbols)
        # The session timeout bounds WebSocket handshakes; REST calls set their own.
        timeout = aiohttp.ClientTimeout(total=HANDSHAKE_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            rest = RestClient(session, config.rest_url)
            await rest.validate_symbols(config.symbols)
            backfiller: Backfiller

            def on_gap(symbol: str, first: int, last: int) -> None:
                gaplog.opened(symbol, first, last)
                backfiller.request(symbol, first, last)

            tracker = Tracker(
                buffer,
                stats,
                on_gap=on_gap,
                max_trades=config.max_trades,
                on_limit=stop.set,
                backfill_max=config.backfill_max,
                on_skip=gaplog.skipped,
            )
            backfiller = Backfiller(rest, tracker, stats, emit, on_hole=gaplog.hole)
            await resume(
                tracker,
                gaplog,
                backfiller.request,
                stats,
                config.symbols,
                last_ids,
                buffer.spool.peek(),
            )

            def still_missing() -> list[tuple[str, int, int]]:
                return [g for g in gaplog.unsettled if tracker.missing_within(*g)]

            stats.started = time.monotonic()
            reading_done = asyncio.Event()
            groups = split_into_connections(config.symbols, config.streams_per_connection)
            async with asyncio.TaskGroup() as tg:
                write_task = tg.create_task(sink.run(reading_done))
                readers = [
                    tg.create_task(
                        ConnectionGroup(
                            session, config.ws_url, group, tracker, stats, emit, stop, policy
                        ).run()
                    )
                    for group in groups
                ]
                helpers = [
                    tg.create_task(backfiller.run()),
                    tg.create_task(settle_periodically(gaplog, still_missing)),
                ]
                if config.duration is not None:
                    helpers.append(tg.create_task(_stop_after(config.duration, stop)))
                await _until_stopped(stop, readers, write_task)
                stop.set()
                for task in readers:
                    await task
                for task in helpers:
                    task.cancel()
                reading_done.set()
                await _drain(write_task, emit)
            try:
                async with asyncio.timeout(SETTLE_DEADLINE_SECONDS):
                    await gaplog.settle(still_missing())
            except TimeoutError:
                pass  # open gaps stay open in the table and are fetched at the next start
    finally:
        await sink.close()
        await gaplog.close()
    summary = stats.summary()
    emit("stopped", f"stored {summary.stored} trades")
    return summary


async def _drain(write_task: asyncio.Task[None], emit: EventSink) -> None:
    """Let the writers commit what was received, but not forever: a database that hangs
    (rather than fails) must not keep a stopping ingest alive. What is not committed in
    time is in the spool (see Sink) and is committed by the next run."""
    done, _ = await asyncio.wait([write_task], timeout=SHUTDOWN_DEADLINE_SECONDS)
    if not done:
        write_task.cancel()
        emit("spooled", "the database did not commit in time; received trades kept in the spool")


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
