"""`import_history`: the library call behind `binprice import` (and `ingest --since`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import psycopg

from binprice.errors import ArchiveError, UsageError
from binprice.history._archive import ArchiveFile, Period, parse_name, plan
from binprice.history._fetch import ArchiveSource, LocalSource, Source
from binprice.history._options import ImportOptions
from binprice.history._results import (
    EventKind,
    FileProgress,
    FileResult,
    FileStatus,
    GapResult,
    ImportEvent,
    ImportSummary,
    SymbolResult,
)
from binprice.history._run import (
    IMPORT_LOCK_CLASS,
    UNPUBLISHED_DAYS,
    Pipeline,
    Ready,
    Recorded,
    Settled,
    SymbolEnd,
    classify_unavailable,
    unavailable_runs,
)
from binprice.history._timeline import Span, Timeline
from binprice.ingest.rest import RestClient
from binprice.ingest.writer import TradeWriter

_RECORDED = """
SELECT name, sha256, state, rows, inserted, first_id, last_id, period_start, period_end
FROM imports WHERE symbol = ANY(%s)
"""
_WHY = {
    FileStatus.MISSING: "missing from the archive",
    FileStatus.NOT_PUBLISHED: "not published yet",
    FileStatus.NOT_ARCHIVED: "not in the archive",
}


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
    thread_stop = threading.Event()
    loader_conn = db.connect(database_url)
    try:
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, connect_timeout=db.CONNECT_TIMEOUT_SECONDS
        )
    except psycopg.Error as exc:
        loader_conn.close()
        raise db.database_error(database_url, exc) from None
    try:
        async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
            archive = ArchiveSource(session, options.archive_url, options.spool_dir)
            source: Source = archive
            if options.local:
                source = LocalSource(options.folders, options.files, archive)
            plans = _plans(options, source, end)
            recorded = await _recorded(conn, list(plans))
            await _lock(conn, list(plans))
            rest = writer = None
            if options.rest_tail:
                rest = RestClient(session, options.rest_url)
                writer = await TradeWriter.connect(database_url)
                stack.push_async_callback(writer.close)
            pipeline = Pipeline(
                options, source, plans, recorded, loader_conn, emit,
                on_progress or _ignore, thread_stop, stop,
            )  # fmt: skip
            results = await _consume(pipeline, conn, rest, writer, options, end, today, stop)
    finally:
        await conn.close()
        loader_conn.close()
    return ImportSummary(tuple(results), time.monotonic() - began, stopped=thread_stop.is_set())


async def _consume(
    pipeline: Pipeline,
    conn: psycopg.AsyncConnection[Any],
    rest: RestClient | None,
    writer: TradeWriter | None,
    options: ImportOptions,
    end: date,
    today: date,
    stop: asyncio.Event | None,
) -> list[SymbolResult]:
    emit, thread_stop = pipeline.emit, pipeline.stop
    watcher = asyncio.create_task(_relay(stop, thread_stop)) if stop is not None else None
    producer = asyncio.create_task(pipeline.produce(), name="import planner")
    out: list[SymbolResult] = []
    files: list[FileResult] = []
    try:
        while (item := await pipeline.queue.get()) is not None:
            if isinstance(item, Settled):
                files.append(item.result)
                if item.kind is not None:
                    emit(_event(item.kind, item.result, item.message))
            elif isinstance(item, Ready):
                if thread_stop.is_set():
                    item.download.cancel()
                    continue
                result = await pipeline.load(item)
                files.append(result)
                emit(_file_event(result))
            elif isinstance(item, SymbolEnd):
                span_start = options.start or min((f.start for f in files), default=end)
                span_end = end if options.start else max((f.end for f in files), default=end)
                files = classify_unavailable(files, today)
                for run in unavailable_runs(files):
                    emit(_unavailable_event(run))
                last_id, rest_trades = None, 0
                gaps: tuple[GapResult, ...] = ()
                if not thread_stop.is_set():
                    span = _span(item.symbol, span_start, span_end, files, today)

                    def report(kind: EventKind, message: str, symbol: str = item.symbol) -> None:
                        emit(ImportEvent(kind, symbol, message))

                    timeline = Timeline(conn, span, rest, writer, report)
                    last_id, found = await timeline.run()
                    gaps, rest_trades = tuple(found), timeline.rest_trades
                out.append(SymbolResult(item.symbol, tuple(files), last_id, rest_trades, gaps))
                emit(ImportEvent(EventKind.DONE, item.symbol, _symbol_text(out[-1])))
                files = []
        await producer
    finally:
        for task in (producer, watcher):
            if task is not None:
                task.cancel()
        while not pipeline.queue.empty():  # downloads nobody will load
            leftover = pipeline.queue.get_nowait()
            if isinstance(leftover, Ready):
                leftover.download.cancel()
    return out


async def _relay(stop: asyncio.Event, thread_stop: threading.Event) -> None:
    await stop.wait()
    thread_stop.set()


def _plans(options: ImportOptions, source: Source, end: date) -> dict[str, list[ArchiveFile]]:
    """Per symbol, the files to import, in date order."""
    for path in options.files:
        if parse_name(path.name) is None:
            raise UsageError(
                f"{path}: not a Binance spot trades file name (SYMBOL-trades-YYYY-MM[-DD].zip)"
            )
    if options.start is not None:
        symbols = options.symbols
        if not symbols and isinstance(source, LocalSource):
            symbols = tuple(sorted({f.symbol for f in source.available()}))
        return {s: plan(s, options.start, end) for s in symbols}
    assert isinstance(source, LocalSource)
    found = [f for f in source.available() if not options.symbols or f.symbol in options.symbols]
    months = {(f.symbol, f.start) for f in found if f.period is Period.MONTHLY}
    plans: dict[str, list[ArchiveFile]] = {}
    for f in found:  # a monthly file makes the same month's daily files redundant
        if f.period is Period.DAILY and (f.symbol, f.start.replace(day=1)) in months:
            continue
        plans.setdefault(f.symbol, []).append(f)
    if not plans:
        raise UsageError("no Binance spot trades zips (SYMBOL-trades-YYYY-MM[-DD].zip) found")
    return plans


async def _recorded(conn: psycopg.AsyncConnection[Any], symbols: list[str]) -> dict[str, Recorded]:
    cur = await conn.execute(_RECORDED, (symbols,))
    return {
        str(name): Recorded(str(sha), str(state), int(rows), int(ins), first, last, start, end)
        for name, sha, state, rows, ins, first, last, start, end in await cur.fetchall()
    }


async def _lock(conn: psycopg.AsyncConnection[Any], symbols: list[str]) -> None:
    for symbol in symbols:
        cur = await conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (IMPORT_LOCK_CLASS, symbol)
        )
        row = await cur.fetchone()
        if row is None or not row[0]:
            raise ArchiveError(
                f"another binprice import of {symbol} is running on this database; "
                "wait for it to finish (a second one would only repeat its work)"
            )


def _span(symbol: str, start: date, end: date, files: list[FileResult], today: date) -> Span:
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
    )


def _event(kind: EventKind, result: FileResult, message: str) -> ImportEvent:
    return ImportEvent(kind, result.symbol, message, file=result.name, result=result)


def _file_event(r: FileResult) -> ImportEvent:
    if r.status is FileStatus.REFUSED:
        return _event(EventKind.REFUSED, r, f"{r.name}: refused: {r.reason}")
    if r.status is FileStatus.INTERRUPTED:
        return _event(
            EventKind.INTERRUPTED,
            r,
            f"{r.name}: interrupted after trade id {r.last_id} ({r.rows:,} trades stored); "
            "the next run resumes there",
        )
    rate = r.rows / r.seconds if r.seconds > 0 else 0.0
    ids = "" if r.first_id is None else f", ids {r.first_id}..{r.last_id}"
    return _event(
        EventKind.LOADED,
        r,
        f"{r.name}: {r.rows:,} trades ({r.inserted:,} new){ids} in {r.seconds:.1f} s "
        f"({rate:,.0f}/s, {r.csv_bytes / 1e6 / max(r.seconds, 1e-9):.1f} MB/s)",
    )


def _unavailable_event(run: list[FileResult]) -> ImportEvent:
    status = run[0].status
    kind = {
        FileStatus.MISSING: EventKind.MISSING,
        FileStatus.NOT_PUBLISHED: EventKind.NOT_PUBLISHED,
        FileStatus.NOT_ARCHIVED: EventKind.NOT_ARCHIVED,
    }[status]
    days = f"{run[0].start}" + ("" if len(run) == 1 else f" to {run[-1].end - timedelta(days=1)}")
    names = run[0].name if len(run) == 1 else f"{run[0].name} .. {run[-1].name}"
    return ImportEvent(kind, run[0].symbol, f"{run[0].symbol} {days}: {_WHY[status]} ({names})")


def _symbol_text(s: SymbolResult) -> str:
    counts: dict[str, int] = {}
    for f in s.files:
        counts[f.status.value] = counts.get(f.status.value, 0) + 1
    parts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items())
    tail = f", {s.rest_trades:,} trades from REST" if s.rest_trades else ""
    last = "no trades stored" if s.last_trade_id is None else f"last trade id {s.last_trade_id}"
    return f"{s.symbol}: {parts or 'no files'}{tail}; {last}"


def _ignore(_event: Any) -> None:
    pass
