"""The import run: plan → checksums → downloads ahead → one loader → timeline, per symbol.

A producer task walks the plan in order: it reads each file's published checksum, decides from
the `imports` table whether the file is done, to resume, or republished, and starts its download
(at most `downloads` files are fetched or waiting ahead of the loader, so disk use stays
bounded too). The consumer takes the files in plan order and loads one at a time in a worker
thread (`_load`), so downloading the next files overlaps loading the current one. When a
symbol's files are through, its timeline is checked (`_timeline`).

A stop waits only for the chunk being committed: a checksum being read or a download in flight
is abandoned at once (its partial file removed; nothing of it was stored), and every file not
reached is reported `not_loaded`, for the next run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from binprice.db.imports import ImportRecord, Resume, open_block_month
from binprice.db.partitions import ensure_partitions
from binprice.errors import ArchiveError, ArchiveFileError, DatabaseBusyError
from binprice.events import EventKind
from binprice.history._archive import ArchiveFile, Period
from binprice.history._compact import load_blocks
from binprice.history._fetch import Source
from binprice.history._load import LoadJob, Progress, load_file
from binprice.history._options import ImportOptions
from binprice.history._plan import compressed_month, plan_text
from binprice.history._results import (
    FileProgress,
    FileResult,
    FileStatus,
    ImportEvent,
    file_event,
)
from binprice.kinds import TradeKind

#: Why a file was not loaded, by where the stop found it.
STOPPED_CHECKING = "stopped while reading its checksum"
STOPPED_DOWNLOADING = "stopped while downloading"
STOPPED_BEFORE = "stopped before its turn"

T = TypeVar("T")
OnEvent = Callable[[ImportEvent], None]
OnProgress = Callable[[FileProgress], None]


@dataclass(frozen=True, slots=True)
class Ready:
    """A file being downloaded (or hashed), to load when its turn comes."""

    file: ArchiveFile
    sha256: str
    download: asyncio.Task[Any]
    republished: bool
    resume: Resume | None


@dataclass(frozen=True, slots=True)
class Settled:
    """A file decided without loading: skipped, refused, or not in the archive."""

    result: FileResult
    message: str
    kind: EventKind | None


@dataclass(frozen=True, slots=True)
class SymbolEnd:
    symbol: str


Item = Ready | Settled | SymbolEnd | None


@dataclass(slots=True)
class Pipeline:
    """One run's producer and loader, sharing the plan and the `imports` snapshot."""

    options: ImportOptions
    source: Source
    plans: dict[str, list[ArchiveFile]]
    recorded: dict[str, ImportRecord]
    #: Idle loader connections; a file takes one for its load.
    loader_conns: asyncio.Queue[psycopg.Connection[Any]]
    emit: OnEvent
    on_progress: OnProgress
    stop: threading.Event
    #: The caller's stop event, checked after every progress report.
    user_stop: asyncio.Event | None = None
    queue: asyncio.Queue[Item] = field(init=False)
    #: Decides which months are closed (written compressed).
    today: date = field(init=False)
    semaphore: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.today = self.options.today or datetime.now(UTC).date()
        self.queue = asyncio.Queue(self.options.downloads)
        self.semaphore = asyncio.Semaphore(self.options.downloads)

    # --- producer ---------------------------------------------------------------------------

    async def produce(self) -> None:
        try:
            for symbol, files in self.plans.items():
                self.emit(
                    ImportEvent(EventKind.PLANNED, symbol, plan_text(files), files=len(files))
                )
                for file in files:
                    if self.stopping:
                        result = _result(file, FileStatus.NOT_LOADED, STOPPED_BEFORE)
                        await self._put(Settled(result, "", None))  # counted, not a line each
                        continue
                    await self._prepare(file, expand=True)
                await self.queue.put(SymbolEnd(symbol))
        finally:
            await self.queue.put(None)

    @property
    def stopping(self) -> bool:
        return self.stop.is_set() or (self.user_stop is not None and self.user_stop.is_set())

    async def _until_stop(self, work: Awaitable[T]) -> T:
        """`work`'s result; if a stop comes first, `work` is cancelled and _Stopped raised.

        A stop waits for a chunk being committed, not for the network: a stalled download
        would otherwise hold it for its read timeouts."""
        task = asyncio.ensure_future(work)
        if self.user_stop is None:
            return await task
        stopping = asyncio.ensure_future(self.user_stop.wait())
        try:
            await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not task.done():  # a stop, or this task cancelled (a second signal)
                task.cancel()
                await asyncio.wait((task,))
        if task.cancelled():
            raise _Stopped
        return task.result()

    async def _prepare(self, file: ArchiveFile, *, expand: bool) -> None:
        try:
            sha = await self._until_stop(self.source.checksum(file))
        except _Stopped:
            await self._settle(file, FileStatus.NOT_LOADED, STOPPED_CHECKING, EventKind.NOT_LOADED)
            return
        except ArchiveError as exc:
            await self._settle(file, FileStatus.REFUSED, _reason(exc, file), EventKind.REFUSED)
            return
        if sha is None:
            if expand and file.period is Period.MONTHLY:
                days = file.daily_files()
                self.emit(
                    ImportEvent(
                        EventKind.DAILY_INSTEAD,
                        file.symbol,
                        f"{file.name} is not in the archive; using its {len(days)} daily files",
                        file=file.name,
                        files=len(days) - 1,
                    )
                )
                for day in days:
                    await self._prepare(day, expand=False)
                return
            await self._settle(file, FileStatus.MISSING, "not in the archive", None)
            return
        record = self.recorded.get(file.name)
        covering = self._covered_by(file)
        if record is not None and record.state == "done" and record.sha256 == sha:
            result = _result(file, FileStatus.SKIPPED, "already imported", record)
            await self._put(Settled(result, f"{file.name}: already imported", EventKind.SKIPPED))
            return
        if record is None and covering:
            reason = f"already imported as {covering}"
            result = _result(file, FileStatus.SKIPPED, reason)
            await self._put(Settled(result, f"{file.name}: {reason}", EventKind.SKIPPED))
            return
        resume = None
        if (
            record is not None
            and record.state == "partial"
            and record.sha256 == sha
            and record.last_id is not None
        ):
            resume = Resume(record.rows, record.inserted, record.first_id, record.last_id)
        republished = record is not None and record.sha256 != sha
        task = asyncio.create_task(self._download(file, sha), name=f"download {file.name}")
        await self._put(Ready(file, sha, task, republished, resume))

    def _covered_by(self, file: ArchiveFile) -> str:
        """Names of done files of the other period that cover all of `file`'s days."""
        done = [
            (name, r)
            for name, r in self.recorded.items()
            if r.state == "done" and name.startswith(f"{file.symbol}-")
        ]
        days = set(file.days())
        covering = [
            name
            for name, r in done
            if name != file.name and r.start < file.end and r.end > file.start
        ]
        covered = {d for name in covering for d in self.recorded[name].days()}
        return ", ".join(sorted(covering)) if days <= covered else ""

    async def _download(self, file: ArchiveFile, sha: str) -> Any:
        async with self.semaphore:
            return await self.source.fetch(file, sha)

    async def _settle(
        self, file: ArchiveFile, status: FileStatus, reason: str, kind: EventKind | None
    ) -> None:
        result = _result(file, status, reason)
        message = f"{file.name}: {'refused: ' if status is FileStatus.REFUSED else ''}{reason}"
        if status is FileStatus.NOT_LOADED:
            message = file_event(result).message
        await self._put(Settled(result, message, kind))

    async def _put(self, item: Item) -> None:
        await self.queue.put(item)

    # --- consumer ---------------------------------------------------------------------------

    async def load(self, ready: Ready) -> FileResult:
        """Wait for the file's download, then load it in the worker thread."""
        file = ready.file
        try:
            path: Path = await self._until_stop(ready.download)
        except _Stopped:
            return _result(file, FileStatus.NOT_LOADED, STOPPED_DOWNLOADING)
        except ArchiveFileError as exc:
            return self._refused(file, exc.reason)
        if self.stopping:  # downloaded and verified: the spooled zip is reused next time
            return _result(file, FileStatus.NOT_LOADED, STOPPED_BEFORE)
        if ready.republished:
            self.emit(
                ImportEvent(
                    EventKind.REPUBLISHED,
                    file.symbol,
                    f"{file.name}: republished with a new checksum; importing it again",
                    file=file.name,
                )
            )
        if ready.resume is not None:
            self.emit(
                ImportEvent(
                    EventKind.RESUMED,
                    file.symbol,
                    f"{file.name}: resuming after {file.kind.label} id {ready.resume.last_id} "
                    f"({ready.resume.rows:,} {file.kind.label}s already stored)",
                    file=file.name,
                )
            )
        job = LoadJob(file, path, ready.sha256, self.source.describe(file), ready.resume)
        loop = asyncio.get_running_loop()

        def progress(p: Progress) -> None:
            # In the loader thread: hand the report to the event loop and wait for it, so the
            # callback runs where the caller lives and a stop it sets takes effect at once.
            report = FileProgress(file.symbol, file.name, p.rows, p.csv_bytes, p.csv_total)
            asyncio.run_coroutine_threadsafe(self._report(report), loop).result()

        conn = await self.loader_conns.get()
        began = time.monotonic()
        try:
            load = await self._prepare_month(conn, file)
            done = await _in_thread(
                self.stop,
                lambda: load(
                    conn,
                    job,
                    stop=self.stop,
                    on_progress=progress,
                    commit_rows=self.options.commit_rows,
                    block_bytes=self.options.block_bytes,
                ),
            )
        except ArchiveFileError as exc:
            self.source.unlink(path)
            return self._refused(file, exc.reason)
        finally:
            self.loader_conns.put_nowait(conn)
        seconds = time.monotonic() - began
        if not done.complete and done.csv_bytes == 0 and ready.resume is None:
            return _result(file, FileStatus.NOT_LOADED, STOPPED_BEFORE)
        status = FileStatus.LOADED if done.complete else FileStatus.INTERRUPTED
        if done.complete:
            self.source.unlink(path)
        return FileResult(
            file.symbol,
            file.name,
            file.start,
            file.end,
            status,
            rows=done.rows,
            inserted=done.inserted,
            first_id=done.first_id,
            last_id=done.last_id,
            csv_bytes=done.csv_bytes,
            seconds=seconds,
            republished=ready.republished,
            resumed_after=None if ready.resume is None else ready.resume.last_id,
            kind=file.kind,
        )

    async def _prepare_month(
        self, conn: psycopg.Connection[Any], file: ArchiveFile
    ) -> Callable[..., Progress]:
        """Make the file's month ready; return how to load it: as blocks when the month is
        closed (`compressed_month`), else as rows."""
        if file.kind is not TradeKind.TRADES:  # `agg_trades` is one table, never compressed
            return load_file
        await self._ensure_month(conn, file)
        if not compressed_month(file, self.today, self.options.compress_delay):
            return load_file
        await asyncio.to_thread(open_block_month, conn, _month_of(file), file.market)
        return load_blocks

    async def _ensure_month(self, conn: psycopg.Connection[Any], file: ArchiveFile) -> None:
        """The file's month gets its partition of trades before its trades come, on the
        loader's connection in a transaction of its own. Behind a long query that holds the
        DEFAULT partition it gives up (one warning): the trades then wait in DEFAULT and move
        to their month when a later file, ingest or `db partitions --ensure` makes it."""
        try:
            made = await asyncio.to_thread(ensure_partitions, conn, *file.times)
        except DatabaseBusyError as exc:
            kind, messages = EventKind.PARTITION_BUSY, [f"{file.name}: {exc}"]
        else:
            kind = EventKind.PARTITION
            messages = [f"{file.name}: made partition {name}" for name in made]
        for message in messages:
            self.emit(ImportEvent(kind, file.symbol, message, file=file.name))

    async def _report(self, report: FileProgress) -> None:
        self.on_progress(report)
        if self.user_stop is not None and self.user_stop.is_set():
            self.stop.set()

    def _refused(self, file: ArchiveFile, reason: str) -> FileResult:
        return _result(file, FileStatus.REFUSED, reason)


class _Stopped(Exception):
    """A stop came before the awaited work finished (the work was cancelled)."""


async def _in_thread(stop: threading.Event, work: Callable[[], Progress]) -> Progress:
    """Run `work` in a worker thread; if this task is cancelled (a second Ctrl+C), tell the
    loader to stop at its next block so the thread ends soon, with its chunk committed."""
    task = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait([task])
        raise


def _result(
    file: ArchiveFile, status: FileStatus, reason: str, record: ImportRecord | None = None
) -> FileResult:
    if record is None:
        return FileResult(
            file.symbol, file.name, file.start, file.end, status, reason, kind=file.kind
        )
    return FileResult(
        file.symbol,
        file.name,
        file.start,
        file.end,
        status,
        reason,
        rows=record.rows,
        inserted=record.inserted,
        first_id=record.first_id,
        last_id=record.last_id,
        kind=file.kind,
    )


def _month_of(file: ArchiveFile) -> datetime:
    """The first moment of the UTC month `file` lies in."""
    return file.times[0].replace(day=1)


def _reason(exc: ArchiveError, file: ArchiveFile) -> str:
    return exc.reason if isinstance(exc, ArchiveFileError) else str(exc)
