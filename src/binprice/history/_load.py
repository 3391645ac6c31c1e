"""One verified archive zip → `trades` (or `agg_trades`), in committed chunks, with its
`imports` row.

Runs in a worker thread on a sync psycopg connection. A reader thread inflates the zip and
decodes CSV blocks while this thread streams them into `COPY trades FROM STDIN`: PostgreSQL
parses and indexes one block while Python decodes the next, so an import costs PostgreSQL what
a bare COPY of the same rows costs (see benchmarks/import.py). Only a few blocks are in flight
(`QUEUE_BLOCKS`), whatever the file's size.

Exactly once and resumable: a file is committed in chunks of about `commit_rows` trades, each
in one transaction with the file's `imports` row (`partial`, its last committed id; `done` with
the last chunk) and with the id holes found inside the file (`gaps` rows, `open`). A crash loses
at most the chunk in flight; the next run resumes after the recorded id. Ids already stored
(live capture, a republished file) would make COPY fail on the primary key, so before each run
of fast blocks the next stored id is probed (one index lookup) and blocks reaching it go through
a temporary staging table with `INSERT … ON CONFLICT DO NOTHING` instead. A concurrent writer
that slips into the range anyway aborts the chunk, which is then redone through the staging
table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from binprice.db.aggimport import (
    AggStagedInsert,
    copy_agg_trades,
    next_stored_agg_id,
)
from binprice.db.gaps import record_gaps
from binprice.db.imports import (
    ImportRow,
    Resume,
    StagedInsert,
    copy_trades,
    next_stored_id,
    record_import,
    resume_point,
)
from binprice.db.partitions import month_made_meanwhile
from binprice.history._archive import ArchiveFile
from binprice.history._csv import Block
from binprice.history._zip import BLOCK_BYTES, BlockReader
from binprice.kinds import TradeKind

#: Trades per committed chunk: what a crash can cost, and one rollup trigger run per chunk.
COMMIT_ROWS = 1_000_000

Connection = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class LoadJob:
    """A file whose checksum was verified, ready to load."""

    file: ArchiveFile
    zip_path: Path
    sha256: str
    source: str
    resume: Resume | None = None


@dataclass(slots=True)
class Progress:
    """A file's load so far (committed or in flight); totals include an earlier run's."""

    rows: int = 0
    inserted: int = 0
    first_id: int | None = None
    last_id: int | None = None
    csv_bytes: int = 0
    csv_total: int = 0
    #: Holes inside the file found by this run.
    jumps: int = 0
    complete: bool = False

    @classmethod
    def resumed(cls, resume: Resume | None) -> Progress:
        """A file's progress at the start of a run: an earlier run's committed part, if any."""
        if resume is None:
            return cls()
        return cls(
            rows=resume.rows,
            inserted=resume.inserted,
            first_id=resume.first_id,
            last_id=resume.last_id,
        )


OnProgress = Callable[[Progress], None]


def load_file(
    conn: Connection,
    job: LoadJob,
    *,
    stop: threading.Event,
    on_progress: OnProgress,
    commit_rows: int = COMMIT_ROWS,
    block_bytes: int = BLOCK_BYTES,
) -> Progress:
    """Load `job`; return its progress (`complete` unless `stop` was set first).

    Raises ArchiveFileError if the zip or a line is bad: the chunk in flight is rolled back,
    earlier chunks (verified trades) stay recorded as `partial`.
    """
    resume, staged = job.resume, False
    while True:
        try:
            loader = _Loader(
                conn, job, resume, staged, stop, on_progress=on_progress, commit_rows=commit_rows
            )
            return loader.run(block_bytes)
        except psycopg.errors.UniqueViolation:
            # Another writer stored ids of this chunk after the probe: redo it, staged.
            conn.rollback()
            resume, staged = _resume_point(conn, job), True
        except psycopg.errors.CheckViolation as exc:
            if not month_made_meanwhile(exc):
                raise
            # Its rows were going to DEFAULT when their month was made: redo it, into the month.
            conn.rollback()
            resume = _resume_point(conn, job)


def _resume_point(conn: Connection, job: LoadJob) -> Resume | None:
    file = job.file
    return resume_point(conn, file.name, job.sha256, file.market, file.kind)


class _Loader:
    def __init__(
        self,
        conn: Connection,
        job: LoadJob,
        resume: Resume | None,
        staged: bool,
        stop: threading.Event,
        *,
        on_progress: OnProgress,
        commit_rows: int,
    ) -> None:
        self.conn, self.job, self.stop = conn, job, stop
        self.on_progress, self.commit_rows = on_progress, commit_rows
        self.staged_only = staged
        self.progress = Progress.resumed(resume)
        self.skip_through = None if resume is None else resume.last_id
        #: Aggregate trades go to `agg_trades` (keyed by aggregate id, not partitioned).
        self.agg = job.file.kind is TradeKind.AGG_TRADES
        market = job.file.market
        self._staged = AggStagedInsert(conn, market) if self.agg else StagedInsert(conn, market)

    def run(self, block_bytes: int) -> Progress:
        with BlockReader(
            self.job.zip_path, self.job.file, self.skip_through, block_bytes
        ) as blocks:
            self.progress.csv_total = blocks.csv_total
            pending: Block | None = None
            if self.stop.is_set():  # stopped before its first chunk: nothing to record
                return self.progress
            while True:
                with self.conn.transaction():
                    pending, end = self._chunk(blocks, pending)
                    self._record(end)
                self.progress.complete = end
                self.on_progress(self.progress)
                if end or self.stop.is_set():
                    return self.progress

    def _chunk(self, blocks: BlockReader, pending: Block | None) -> tuple[Block | None, bool]:
        """Copy blocks until the chunk is full, the file ends or a stop; return a block read
        but not copied yet, and whether the file ended."""
        rows, end = 0, False
        jumps: list[tuple[int, int]] = []
        with ExitStack() as copying:
            copy = None
            next_stored: int | None = None
            while rows < self.commit_rows and not self.stop.is_set():
                block, pending = pending or blocks.next(), None
                if block is None:
                    end = True
                    break
                jumps.extend(block.jumps)
                self.progress.csv_bytes += block.size
                if block.first_id is None or block.last_id is None:
                    continue  # every line skipped (resume) or an empty block
                if copy is None:
                    next_stored = self._next_stored(block.first_id)
                if not self.staged_only and (next_stored is None or block.last_id < next_stored):
                    if copy is None:
                        copy = copying.enter_context(self._copy())
                    copy.write(block.payload)
                    self.progress.inserted += block.rows
                else:
                    if copy is not None:  # end the fast COPY; the next block probes again
                        copying.close()
                        copy = None
                    self.progress.inserted += self._staged.insert(block.payload)
                self._advance(block)
                rows += block.rows
        if not end and not self.stop.is_set():
            # A full chunk: look ahead, so that the file's last chunk is the one saying `done`.
            pending = blocks.next()
            end = pending is None
        if jumps:
            file = self.job.file
            kind = TradeKind.AGG_TRADES if self.agg else TradeKind.TRADES
            record_gaps(self.conn, file.symbol, jumps, "open", market=file.market, kind=kind)
        return pending, end

    def _advance(self, block: Block) -> None:
        p = self.progress
        if p.first_id is None:
            p.first_id = block.first_id
        p.last_id = block.last_id
        p.rows += block.rows
        p.jumps += len(block.jumps)
        self.on_progress(p)

    def _copy(self) -> AbstractContextManager[psycopg.Copy]:
        market = self.job.file.market
        return copy_agg_trades(self.conn, market) if self.agg else copy_trades(self.conn, market)

    def _next_stored(self, first_id: int) -> int | None:
        file = self.job.file
        if self.agg:
            return next_stored_agg_id(self.conn, file.symbol, first_id, market=file.market)
        return next_stored_id(self.conn, file.symbol, first_id, *file.times, market=file.market)

    def _record(self, end: bool) -> None:
        job, p = self.job, self.progress
        row = ImportRow(
            name=job.file.name,
            symbol=job.file.symbol,
            start=job.file.start,
            end=job.file.end,
            sha256=job.sha256,
            state="done" if end else "partial",
            rows=p.rows,
            inserted=p.inserted,
            first_id=p.first_id,
            last_id=p.last_id,
            source=job.source,
            market=job.file.market,
            kind=job.file.kind,
        )
        record_import(self.conn, row)
