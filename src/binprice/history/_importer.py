"""`import_history`: the library call behind `binprice import` (and `ingest --since`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import psycopg

from binprice.db.gaprows import last_stored
from binprice.db.imports import recorded_imports, try_lock_import
from binprice.db.writer import TradeWriter
from binprice.errors import ArchiveError
from binprice.events import EventKind
from binprice.exchange.bans import BanBook
from binprice.exchange.rest import ONE_OFF_BAN_WAIT_SECONDS, RestClient
from binprice.history._aggtimeline import AggTimeline, last_stored_agg
from binprice.history._fetch import ArchiveSource, LocalSource, Source
from binprice.history._options import ImportOptions
from binprice.history._pipeline import Pipeline, Ready, Settled, SymbolEnd
from binprice.history._plan import (
    UNPUBLISHED_DAYS,
    classify_unavailable,
    plan_files,
    unavailable_runs,
)
from binprice.history._results import (
    FileProgress,
    FileResult,
    FileStatus,
    GapResult,
    ImportEvent,
    ImportSummary,
    SymbolResult,
    file_event,
    file_event_of,
    symbol_text,
    unavailable_event,
)
from binprice.history._timeline import Span, Timeline
from binprice.kinds import TradeKind
from binprice.markets import Market


async def import_history(
    options: ImportOptions,
    database_url: str,
    *,
    stop: asyncio.Event | None = None,
    on_event: Callable[[ImportEvent], None] | None = None,
    on_progress: Callable[[FileProgress], None] | None = None,
) -> ImportSummary:
    """Import the archive files `options` describe into the database at `database_url`
    (migrated to head by the caller). Never prints: it reports through the callbacks.

    Returns a summary per symbol, with the last stored trade id (where live capture goes on).
    A refused or missing file does not stop the run; it is in the summary (`ok` is False).
    Raises ArchiveError if a symbol is being imported by another process, DatabaseError if
    the database fails.
    """
    from binprice import db

    began = time.monotonic()
    emit = on_event or _ignore
    today = options.today or datetime.now(UTC).date()
    end = options.end or today
    market = options.market_of
    thread_stop = threading.Event()
    loaders: asyncio.Queue[psycopg.Connection[Any]] = asyncio.Queue()
    opened: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(options.loaders):
            opened.append(db.connect(database_url))
            loaders.put_nowait(opened[-1])
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, connect_timeout=db.CONNECT_TIMEOUT_SECONDS
        )
    except psycopg.Error as exc:
        for loader in opened:
            loader.close()
        raise db.database_error(database_url, exc) from None
    except BaseException:
        for loader in opened:
            loader.close()
        raise
    try:
        async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
            archive = ArchiveSource(session, options.archive_url, options.spool_dir)
            source: Source = archive
            if options.local:
                source = LocalSource(
                    options.folders, options.files, archive, market, options.kind_of
                )
            plans = plan_files(options, source, end)
            recorded = await recorded_imports(conn, list(plans), market, options.kind_of)
            await _lock(conn, list(plans), market, options.kind_of)
            rest = writer = None
            if options.rest_tail:
                bans = None if options.bans_file is None else BanBook(options.bans_file)
                rest = RestClient(
                    session,
                    options.rest_url,
                    bans=bans,
                    max_ban_wait=ONE_OFF_BAN_WAIT_SECONDS,
                    market=market,
                    api_key=options.api_key,
                )
                writer = await TradeWriter.connect(database_url, market)
                stack.push_async_callback(writer.close)
            pipeline = Pipeline(
                options,
                source,
                plans,
                recorded,
                loaders,
                emit,
                on_progress or _ignore,
                thread_stop,
                stop,
            )
            results = await _consume(
                pipeline, conn, rest, writer, options, end=end, today=today, stop=stop
            )
    finally:
        await conn.close()
        for loader in opened:
            loader.close()
    return ImportSummary(tuple(results), time.monotonic() - began, stopped=thread_stop.is_set())


async def _consume(
    pipeline: Pipeline,
    conn: psycopg.AsyncConnection[Any],
    rest: RestClient | None,
    writer: TradeWriter | None,
    options: ImportOptions,
    *,
    end: date,
    today: date,
    stop: asyncio.Event | None,
) -> list[SymbolResult]:
    """Take the producer's items in plan order; load up to `options.loaders` files at once;
    report and close each symbol in order."""
    thread_stop = pipeline.stop
    watcher = asyncio.create_task(_relay(stop, thread_stop)) if stop is not None else None
    producer = asyncio.create_task(pipeline.produce(), name="import planner")
    ordered = _Ordered(pipeline, conn, rest, writer, options, end, today)
    slots = asyncio.Semaphore(options.loaders)
    try:
        while (item := await pipeline.queue.get()) is not None:
            if isinstance(item, Ready):  # after a stop too: its load says it was not loaded
                await slots.acquire()
                task = asyncio.create_task(pipeline.load(item), name=f"load {item.file.name}")
                task.add_done_callback(lambda _: slots.release())
                ordered.pending.append(task)
            else:
                ordered.pending.append(item)
            await ordered.flush(wait=False)
        await ordered.flush(wait=True)
        await producer
    finally:
        leftovers: list[asyncio.Task[Any] | None] = [producer, watcher, *ordered.tasks()]
        for job in leftovers:
            if job is not None and not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
        while not pipeline.queue.empty():  # downloads nobody will load
            leftover = pipeline.queue.get_nowait()
            if isinstance(leftover, Ready):
                leftover.download.cancel()
                with contextlib.suppress(asyncio.CancelledError, ArchiveError):
                    await leftover.download
    return ordered.out


@dataclass(slots=True)
class _Ordered:
    """Results in plan order, whichever load finishes first; a symbol's timeline pass once
    all its files are through."""

    pipeline: Pipeline
    conn: psycopg.AsyncConnection[Any]
    rest: RestClient | None
    writer: TradeWriter | None
    options: ImportOptions
    end: date
    today: date
    pending: deque[asyncio.Task[FileResult] | Settled | SymbolEnd] = field(default_factory=deque)
    files: list[FileResult] = field(default_factory=list)
    out: list[SymbolResult] = field(default_factory=list)

    def tasks(self) -> list[asyncio.Task[FileResult]]:
        return [t for t in self.pending if isinstance(t, asyncio.Task)]

    async def flush(self, *, wait: bool) -> None:
        emit = self.pipeline.emit
        while self.pending:
            head = self.pending[0]
            if isinstance(head, asyncio.Task):
                if not head.done() and not wait:
                    return
                result = await head
                self.files.append(result)
                emit(file_event(result))
            elif isinstance(head, Settled):
                self.files.append(head.result)
                if head.kind is not None:
                    emit(file_event_of(head.kind, head.result, head.message))
            else:
                await self._symbol_end(head.symbol)
            self.pending.popleft()

    async def _symbol_end(self, symbol: str) -> None:
        options, end, files = self.options, self.end, self.files
        span_start = options.start or min((f.start for f in files), default=end)
        span_end = end if options.start else max((f.end for f in files), default=end)
        files = classify_unavailable(files, self.today)
        emit = self.pipeline.emit
        for run in unavailable_runs(files):
            emit(unavailable_event(run))
        last_id, rest_trades = None, 0
        gaps: tuple[GapResult, ...] = ()
        if not self.pipeline.stop.is_set():
            span = _span(symbol, span_start, span_end, files, self.today, market=options.market_of)

            def report(kind: EventKind, message: str) -> None:
                emit(ImportEvent(kind, symbol, message))

            if options.kind_of is TradeKind.AGG_TRADES:
                last_id, found = await AggTimeline(self.conn, span, report).run()
                gaps = tuple(found)
            else:
                timeline = Timeline(self.conn, span, self.rest, self.writer, report)
                last_id, found = await timeline.run()
                gaps, rest_trades = tuple(found), timeline.rest_trades
        elif options.kind_of is TradeKind.AGG_TRADES:
            span = _span(symbol, span_start, span_end, files, self.today, market=options.market_of)
            last_id = await last_stored_agg(self.conn, span)
        else:  # the timeline pass waits for the next run; what is stored is said all the same
            last_id = await last_stored(self.conn, symbol, market=options.market_of)
        result = SymbolResult(symbol, tuple(files), last_id, rest_trades, gaps, options.kind_of)
        self.out.append(result)
        emit(ImportEvent(EventKind.DONE, symbol, symbol_text(self.out[-1])))
        self.files = []


async def _relay(stop: asyncio.Event, thread_stop: threading.Event) -> None:
    await stop.wait()
    thread_stop.set()


async def _lock(
    conn: psycopg.AsyncConnection[Any], symbols: list[str], market: Market, kind: TradeKind
) -> None:
    for symbol in symbols:
        if not await try_lock_import(conn, symbol, market, kind):
            raise ArchiveError(
                f"another binprice import of {symbol} is running on this database; "
                "wait for it to finish (a second one would only repeat its work)"
            )


def _span(
    symbol: str, start: date, end: date, files: list[FileResult], today: date, *, market: Market
) -> Span:
    stored = [f.start for f in files if f.status in (FileStatus.LOADED, FileStatus.SKIPPED)]
    failed = [f.start for f in files if f.status.failed]
    first, last = (min(stored), max(stored)) if stored else (None, None)
    return Span(
        symbol,
        start,
        end,
        failed_before=first is not None and any(d < first for d in failed),
        failed_after=last is not None and any(d > last for d in failed),
        reaches_unpublished=any(f.status is FileStatus.NOT_PUBLISHED for f in files)
        or end > today - timedelta(days=UNPUBLISHED_DAYS),
        market=market,
    )


def _ignore(_event: Any) -> None:
    pass
