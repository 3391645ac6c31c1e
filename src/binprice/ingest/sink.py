"""The writing side: workers that take batches from the buffer and commit them.

Several workers (each with its own connection) let PostgreSQL work on one batch while Python
encodes the next; batch order does not matter because every trade is identified by its key.
A commit is the only acknowledgement: stats count a trade as stored after its commit (one
whose answer was lost is settled by asking the server before the batch is written again, see
`TradeWriter.settle`). A deadlock or serialization failure with another writer (two ingests
storing the same symbol) is a conflict, not an outage: it is retried and reported as one. Through
a database outage a worker keeps its batch and retries with backoff while the readers go on
(the buffer spills to the disk spool); while stopping, it gives up after a grace period and
leaves everything in the spool for the next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from binprice._aio import first_of
from binprice.completeness.gapkeeper import GapKeeper
from binprice.db.aggwriter import writer_class
from binprice.db.copy import Batch
from binprice.db.writer import TradeWriter, Unanswered
from binprice.errors import DatabaseError
from binprice.events import EventKind
from binprice.exchange.protocol import SeriesRecord
from binprice.exchange.retry import write_retrying
from binprice.ingest.buffer import TradeBuffer
from binprice.ingest.config import IngestConfig
from binprice.ingest.recorder import Recorder

#: While stopping with the database down, how long a worker keeps trying before spooling.
SHUTDOWN_GRACE_SECONDS = 2.0
DB_RETRY_INITIAL_SECONDS = 0.2
DB_RETRY_MAX_SECONDS = 5.0
#: serialization_failure and deadlock_detected: a transaction lost a race and was rolled back.
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})


class Sink:
    """Owns the writer connections; `run` drains the buffer until reading is done."""

    def __init__(
        self,
        first: TradeWriter,
        url: str,
        buffer: TradeBuffer,
        recorder: Recorder,
        config: IngestConfig,
        *,
        gaps: GapKeeper,
        on_stored: Callable[[list[SeriesRecord]], None] | None = None,
    ) -> None:
        #: Its rows are flushed before every batch commit (a gap's row goes in before any
        #: trade beyond it); database errors there count as a failed commit.
        self._gaps = gaps
        self.writers: list[TradeWriter | None] = [first] + [None] * (config.writers - 1)
        self._url = url
        self._buffer = buffer
        self._recorder = recorder
        self._config = config
        self._on_stored = on_stored
        #: Set when a commit succeeds: writers waiting out a backoff retry at once.
        self._recovered = asyncio.Event()
        #: Set while the database takes commits (the backfill waits for it).
        self.writable = asyncio.Event()
        self.writable.set()

    async def run(self, reading_done: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            for slot in range(len(self.writers)):
                tg.create_task(self._worker(slot, reading_done))

    async def close(self) -> None:
        for writer in self.writers:
            if writer is not None and not writer.closed:
                await writer.close()

    async def _worker(self, slot: int, reading_done: asyncio.Event) -> None:
        buffer = self._buffer
        config = self._config
        while True:
            if buffer.empty:
                if reading_done.is_set():
                    return
                await first_of(buffer.wait(), reading_done.wait())
                continue
            if config.flush_interval and len(buffer) < config.max_batch:
                await asyncio.sleep(config.flush_interval)
            batch, chunk = buffer.take(config.max_batch)
            if batch is None:
                continue
            if not await self._store(slot, batch, chunk is not None, reading_done):
                return
            buffer.done(chunk)

    # The fault-critical write path: its retry hooks close over this batch's state (the
    # unanswered commits, when stopping began), which keeps every outcome in one view.
    async def _store(  # noqa: C901, PLR0915
        self, slot: int, batch: Batch, spooled: bool, reading_done: asyncio.Event
    ) -> bool:
        """Commit `batch`, retrying through outages. False: gave up while stopping (the batch
        and the rest of memory are then in the spool)."""
        import psycopg

        down = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError)
        stopping_since: list[float] = []
        clock = self._recorder.clock
        #: Earlier writes of this batch whose COMMIT went unanswered.
        unanswered: list[Unanswered] = []

        def give_up() -> bool:
            """Only while stopping, and only after the grace period."""
            if not reading_done.is_set():
                return False
            if not stopping_since:
                stopping_since.append(clock())
            return clock() - stopping_since[0] > SHUTDOWN_GRACE_SECONDS

        async def sleep(seconds: float) -> None:
            # Retry at once when another writer got through, and do not sit out a long
            # backoff once the run is stopping (the last commits must be quick).
            self._recovered.clear()
            if reading_done.is_set():
                await first_of(
                    asyncio.sleep(min(seconds, DB_RETRY_INITIAL_SECONDS)), self._recovered.wait()
                )
            else:
                await first_of(asyncio.sleep(seconds), reading_done.wait(), self._recovered.wait())

        async def failed(exc: BaseException) -> None:
            writer = self.writers[slot]
            if writer is not None and writer.unanswered is not None:
                unanswered.append(writer.unanswered)
                writer.unanswered = None
            if is_conflict(exc):
                # The database is up and the connection fine; only this transaction was
                # rolled back.
                self._recorder.conflict(_one_line(exc))
                return
            if self._recorder.database_failed(_one_line(exc)):
                self.writable.clear()
            if writer is not None and not writer.closed:
                await writer.close()

        retrying = write_retrying(
            down,
            initial=DB_RETRY_INITIAL_SECONDS,
            maximum=DB_RETRY_MAX_SECONDS,
            sleep=sleep,
            give_up=give_up,
            before_sleep=failed,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    writer = self.writers[slot]
                    if writer is None or writer.closed:
                        writer = self.writers[slot] = await writer_class(self._config.kind).connect(
                            self._url, self._config.market
                        )
                    await self._gaps.flush()
                    began = clock()
                    settled = await _settle(writer, unanswered, batch)
                    if settled is None:
                        inserted, committed_ms = await writer.write(batch)
                    else:
                        inserted, committed_ms = settled, int(self._recorder.wall_clock() * 1000)
                    took = clock() - began
        except down:
            # Stopping, and the database is still down: everything goes to the spool.
            if not spooled:
                self._buffer.keep(batch)
            self._buffer.spill()
            self._recorder.event(
                EventKind.SPOOLED, "database still down; received trades kept in spool"
            )
            return False
        except asyncio.CancelledError:
            # Stopping with the database hung, or a hard abort: whether this batch
            # committed is unknown, so it goes to the spool; replaying it is harmless.
            if not spooled:
                self._buffer.keep(batch)
            raise
        except psycopg.Error as exc:
            if not spooled:
                self._buffer.keep(batch)
            raise DatabaseError(
                f"the database rejected a batch ({_one_line(exc)}); it is kept in the "
                "spool and retried on the next start"
            ) from None
        self._recovered.set()
        if self._recorder.committed(batch, inserted, committed_ms, took):
            self.writable.set()
        if self._on_stored is not None:
            self._on_stored(batch.decoded())
        return True


async def _settle(
    writer: TradeWriter, unanswered: list[Unanswered], batch: Batch
) -> dict[str, int] | None:
    """If an earlier write of `batch` did commit, though its answer was lost: the rows it
    inserted (the batch is then stored); None if none did."""
    while unanswered:
        inserted = await writer.settle(unanswered[0], batch)
        del unanswered[0]
        if inserted is not None:
            unanswered.clear()
            return inserted
    return None


def is_conflict(exc: BaseException) -> bool:
    """A deadlock (40P01) or serialization failure (40001): the transaction lost a race with
    another one and was rolled back; the database is fine, and trying again is the remedy."""
    import psycopg

    return isinstance(exc, psycopg.Error) and exc.sqlstate in CONFLICT_SQLSTATES


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__
