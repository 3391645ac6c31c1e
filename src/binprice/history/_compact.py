"""One verified archive zip of a closed month → `trade_blocks`, in committed chunks.

The compressed twin of `_load`: the month the file belongs to is closed (`block_month`), so its
trades are written straight in the compressed form instead of as rows that a compress run would
rewrite later. The reader thread decodes the CSV into each line's fields (`CsvDecoder(fields=
True)`); this thread turns them into integer columns (`_columns`), cuts them into the codec's
blocks (`compressed.columns.encode_columns`: a UTC minute each for a busy file, up to 1,000
trades of a day for a quiet one) and streams the blocks into `trade_blocks` by binary COPY,
while it adds their per-minute rollup to `trade_minutes` exactly as the trigger on `trades`
would have. PostgreSQL stores a few hundred block rows where it would have indexed a million
trade rows three times over, so it is no longer the bottleneck: the Python decoding is
(benchmarks/import.py).

The same guarantees as rows:

- **Chunks, resume.** A chunk of about `commit_rows` trades is one transaction with its blocks,
  its rollup, the holes found in the file (`gaps`) and the file's `imports` row (`partial` with
  its last committed id, `done` with the last chunk). A chunk ends on a block boundary (the
  trades of a block not complete yet wait for the next chunk; a stop ends the open block), so
  a killed import leaves the chunk's blocks, recorded, or nothing of the chunk; the next run
  resumes after the recorded id and starts a new block there.
- **Never a trade twice.** Before the blocks of a run of lines are written, two index probes
  ask whether anything of them is stored: blocks of the symbol overlapping their time (an
  earlier run of a republished file, a gap filled meanwhile) or rows in `trades` (live capture
  of that month, a REST fill). If so, those lines take the merge path: the overlapping blocks
  are decoded, the lines' trades not stored in them nor as rows are added, and the blocks are
  written again (the rows stay rows; the next `db compress` merges them). Writers of one
  symbol's day into blocks serialise on an advisory lock of that day (`lock_block_day`), taken
  in day order, so two never decide on the same stored state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg

from binprice.compressed.codec import (
    DAY_MS,
    MINUTE_MS,
    SPARSE_BLOCK_TRADES,
    CodecTrade,
    decode_block,
    encode_blocks,
    is_dense,
)
from binprice.compressed.columns import Columns, encode_columns
from binprice.db.blocks import from_ms, read_blocks, write_blocks
from binprice.db.gaps import record_gaps
from binprice.db.imports import (
    ImportRow,
    Resume,
    add_minutes,
    count_block_month,
    delete_blocks,
    lock_block_day,
    next_block_time,
    next_stored_id,
    record_import,
    resume_point,
    stored_row_ids,
)
from binprice.history._columns import minute_rows, to_columns
from binprice.history._csv import Block as CsvBlock
from binprice.history._load import LoadJob, OnProgress, Progress
from binprice.history._zip import BlockReader

Connection = psycopg.Connection[Any]
#: A Binance spot line is about 70-80 bytes: enough to tell a busy file from a quiet one
#: (the codec's rule, `is_dense`, is 64 trades a minute) before its trades are counted.
LINE_BYTES = 75


def load_blocks(
    conn: Connection,
    job: LoadJob,
    *,
    stop: threading.Event,
    on_progress: OnProgress,
    commit_rows: int,
    block_bytes: int,
) -> Progress:
    """Load `job` as blocks; return its progress (`complete` unless `stop` was set first).

    Raises ArchiveFileError if the zip or a line is bad: the chunk in flight is rolled back,
    earlier chunks stay recorded as `partial`.
    """
    resume = job.resume
    while True:
        try:
            return _BlockLoader(
                conn, job, resume, stop, on_progress=on_progress, commit_rows=commit_rows
            ).run(block_bytes)
        except psycopg.errors.UniqueViolation:
            # A writer that does not take the day locks stored a block of this chunk after
            # the probe: redo the chunk; its probe now sees that block and merges.
            conn.rollback()
            resume = resume_point(conn, job.file.name, job.sha256, job.file.market)


@dataclass(slots=True)
class _Chunk:
    """What a chunk has written so far, for its commit."""

    rows: int = 0
    inserted: int = 0
    first_id: int | None = None
    last_id: int | None = None
    jumps: list[tuple[int, int]] = field(default_factory=list)
    minutes: list[tuple[str, ...]] = field(default_factory=list)


class _BlockLoader:
    def __init__(
        self,
        conn: Connection,
        job: LoadJob,
        resume: Resume | None,
        stop: threading.Event,
        *,
        on_progress: OnProgress,
        commit_rows: int,
    ) -> None:
        self.conn, self.job, self.stop = conn, job, stop
        self.on_progress, self.commit_rows = on_progress, commit_rows
        self.symbol = job.file.symbol
        #: The archive's market: its blocks, rollup, gaps, catalog row and `imports` row.
        self.market = job.file.market
        self.progress = Progress.resumed(resume)
        self.skip_through = None if resume is None else resume.last_id
        self.dense = False
        #: Trades read whose block may not be complete yet (at most one run of decimals).
        self.carry: list[Columns] = []
        start, end = (int(t.timestamp()) * 1000 // DAY_MS for t in job.file.times)
        self._days = range(start, end)

    def run(self, block_bytes: int) -> Progress:
        file = self.job.file
        with BlockReader(
            self.job.zip_path, file, self.skip_through, block_bytes, fields=True
        ) as reader:
            p = self.progress
            p.csv_total = reader.csv_total
            minutes = (file.end - file.start).days * 24 * 60
            self.dense = is_dense(reader.csv_total // LINE_BYTES, minutes)
            if self.stop.is_set():  # stopped before its first chunk: nothing to record
                return p
            pending = reader.next()
            while True:
                with self.conn.transaction():
                    for day in self._days:  # in day order: writers never wait in a circle
                        lock_block_day(self.conn, self.symbol, day, self.market)
                    chunk, pending = self._chunk(reader, pending)
                    end = pending is None
                    self._commit(chunk, end)
                self._advance(chunk)
                p.complete = end
                self.on_progress(p)
                if end or self.stop.is_set():
                    return p

    def _chunk(
        self, reader: BlockReader, pending: CsvBlock | None
    ) -> tuple[_Chunk, CsvBlock | None]:
        """Write blocks until the chunk is full, the file ends or a stop; return the chunk and
        the next block read (None at the end of the file)."""
        chunk = _Chunk()
        while pending is not None:
            block, pending = pending, reader.next()
            chunk.jumps.extend(block.jumps)
            self.progress.csv_bytes += block.size
            for columns in self._ready(to_columns(block.fields or [], block.ids), pending is None):
                self._write(chunk, columns)
            self.on_progress(self.progress)
            if self.stop.is_set():
                # A stop commits what was read, as rows would: the open block ends here (the
                # next run starts a new one, or merges into it if they share a millisecond).
                for columns in self._ready([], last=True):
                    self._write(chunk, columns)
                break
            if chunk.rows >= self.commit_rows:
                break
        return chunk, pending

    def _ready(self, parts: list[Columns], last: bool) -> list[Columns]:
        """The carried trades and `parts` that make whole blocks (all of them at the end of
        the file); the rest is carried to the next block of lines."""
        joined: list[Columns] = []
        for part in [*self.carry, *parts]:
            if joined and _same_digits(joined[-1], part):
                joined[-1] = _join(joined[-1], part)
            elif len(part):
                joined.append(part)
        self.carry = []
        if last or not joined:
            return joined
        # A run of other decimals starts a block (the codec cuts there): only the last run
        # can still grow, from where its last minute (dense) or last open block (sparse) starts.
        tail = joined.pop()
        length = MINUTE_MS if self.dense else DAY_MS
        key = tail.times[-1] // length
        start = len(tail)
        while start > 0 and tail.times[start - 1] // length == key:
            start -= 1
        if not self.dense:
            start += (len(tail) - start) // SPARSE_BLOCK_TRADES * SPARSE_BLOCK_TRADES
        if start < len(tail):
            self.carry = [tail.cut(start, len(tail))]
        if start > 0:
            joined.append(tail.cut(0, start))
        return joined

    def _write(self, chunk: _Chunk, columns: Columns) -> None:
        ids = columns.ids
        if self._stored(columns):
            self._merge(chunk, columns)
        else:
            blocks = encode_columns(
                self.symbol, columns, dense=self.dense, market=self.market.number
            )
            write_blocks(self.conn, blocks)
            chunk.minutes.extend(minute_rows(self.symbol, columns))
            chunk.inserted += len(columns)
        chunk.rows += len(columns)
        chunk.first_id = ids[0] if chunk.first_id is None else chunk.first_id
        chunk.last_id = ids[-1]

    def _stored(self, columns: Columns) -> bool:
        """Whether anything of `columns` may be stored already: a block holding a trade of
        their time, or a row with one of their ids (two probes of primary keys)."""
        start, end = self.job.file.times
        block = next_block_time(self.conn, self.symbol, columns.times[0], end, self.market)
        if block is not None and block <= columns.times[-1]:
            return True
        row = next_stored_id(self.conn, self.symbol, columns.ids[0], start, end, market=self.market)
        return row is not None and row <= columns.ids[-1]

    def _merge(self, chunk: _Chunk, columns: Columns) -> None:
        """Add the trades of `columns` not stored yet to the blocks they overlap (the rows
        stay rows: the next `db compress` merges them)."""
        lo, hi = columns.times[0], columns.times[-1]
        old = read_blocks(
            self.conn, self.symbol, from_ms(lo), from_ms(hi + 1), market=self.market.number
        )
        old = [b for b in old if b.last_ms >= lo and b.first_ms <= hi]
        kept = [t for b in old for t in decode_block(b)]
        start, end = self.job.file.times
        ids = (columns.ids[0], columns.ids[-1])
        rows = stored_row_ids(self.conn, self.symbol, ids, (start, end), self.market)
        stored = {t[0] for t in kept} | rows
        new = _without(columns, stored)
        if not len(new):
            return
        delete_blocks(self.conn, old)
        trades: list[CodecTrade] = [*kept, *new.trades()]
        market = self.market.number
        write_blocks(self.conn, encode_blocks(self.symbol, trades, dense=self.dense, market=market))
        chunk.minutes.extend(minute_rows(self.symbol, new))
        chunk.inserted += len(new)

    def _commit(self, chunk: _Chunk, end: bool) -> None:
        if chunk.minutes:
            add_minutes(self.conn, chunk.minutes, self.market)
        month = self.job.file.times[0].replace(day=1)
        count_block_month(self.conn, month, chunk.inserted, self.market)
        if chunk.jumps:
            record_gaps(self.conn, self.symbol, chunk.jumps, "open", market=self.market)
        p = self.progress
        if chunk.last_id is None and p.last_id is None and not end:
            return  # nothing of the file stored yet: no record
        job = self.job
        record_import(
            self.conn,
            ImportRow(
                name=job.file.name,
                symbol=job.file.symbol,
                start=job.file.start,
                end=job.file.end,
                sha256=job.sha256,
                state="done" if end else "partial",
                rows=p.rows + chunk.rows,
                inserted=p.inserted + chunk.inserted,
                first_id=p.first_id if p.first_id is not None else chunk.first_id,
                last_id=chunk.last_id if chunk.last_id is not None else p.last_id,
                source=job.source,
                market=self.market,
            ),
        )

    def _advance(self, chunk: _Chunk) -> None:
        p = self.progress
        p.rows += chunk.rows
        p.inserted += chunk.inserted
        p.jumps += len(chunk.jumps)
        if chunk.first_id is not None and p.first_id is None:
            p.first_id = chunk.first_id
        if chunk.last_id is not None:
            p.last_id = chunk.last_id


def _same_digits(a: Columns, b: Columns) -> bool:
    return (a.price_digits, a.qty_digits) == (b.price_digits, b.qty_digits)


def _join(a: Columns, b: Columns) -> Columns:
    return Columns(
        a.ids + b.ids,
        a.times + b.times,
        a.prices + b.prices,
        a.qtys + b.qtys,
        a.side + b.side,
        a.price_digits,
        a.qty_digits,
    )


def _without(columns: Columns, ids: set[int]) -> Columns:
    """`columns` without the trades whose id is in `ids`."""
    keep = [i for i, tid in enumerate(columns.ids) if tid not in ids]
    return Columns(
        [columns.ids[i] for i in keep],
        [columns.times[i] for i in keep],
        [columns.prices[i] for i in keep],
        [columns.qtys[i] for i in keep],
        "".join(columns.side[i] for i in keep),
        columns.price_digits,
        columns.qty_digits,
    )
