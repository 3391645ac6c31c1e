"""The bounded hand-off between stream readers and the batch writer.

Readers must never wait (Binance drops a connection whose pings go unanswered, and whatever it
sends meanwhile is lost for good), so `put` never blocks: trades collect in memory up to
`memory_limit`, and past that the whole in-memory backlog spills to the fsynced disk spool in one
chunk. The writer takes spooled chunks first (oldest data first), then memory. Memory is bounded
by `memory_limit` trades whatever the database does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from binprice.binance import Trade
from binprice.ingest.spool import Spool
from binprice.ingest.stats import IngestStats
from binprice.ingest.writer import Batch, CopyEncoder


class TradeBuffer:
    """Reader-side `put`, writer-side `take`; single event loop, no locks."""

    def __init__(self, spool: Spool, memory_limit: int, stats: IngestStats) -> None:
        self.spool = spool
        self.memory_limit = memory_limit
        self.items: list[Trade] = []
        self._stats = stats
        self._encoder = CopyEncoder()
        self._ready = asyncio.Event()
        if len(spool):
            self._ready.set()

    def put(self, trade: Trade) -> None:
        items = self.items
        items.append(trade)
        if len(items) >= self.memory_limit:
            self.spill()
        self._ready.set()

    def spill(self) -> None:
        """Move everything in memory to the spool (durably)."""
        if self.items:
            self.spool.append(self._encoder.batch(self.items))
            self._stats.spilled += len(self.items)
            self._stats.spilled_chunks += 1
            self.items = []

    def __len__(self) -> int:
        """Trades waiting in memory (spooled chunks are counted by the spool)."""
        return len(self.items)

    @property
    def empty(self) -> bool:
        return not self.items and not len(self.spool)

    def take(self, max_batch: int) -> tuple[Batch | None, Path | None]:
        """The next batch: the oldest spool chunk (with its path, to delete after commit),
        else up to `max_batch` trades from memory, encoded."""
        if self.empty:
            self._ready.clear()
            return None, None
        chunk = self.spool.take_oldest()
        if chunk is not None:
            path, batch = chunk
            if self.empty:
                self._ready.clear()
            return batch, path
        items = self.items
        if len(items) <= max_batch:
            self.items = []
            trades = items
        else:
            trades = items[:max_batch]
            del items[:max_batch]
        if self.empty:
            self._ready.clear()
        return self._encoder.batch(trades), None

    def done(self, path: Path | None) -> None:
        """The batch from `take` is committed: delete its spool chunk."""
        if path is not None:
            self.spool.remove(path)

    async def wait(self) -> None:
        """Wait until something is buffered."""
        if self.empty:
            self._ready.clear()
            await self._ready.wait()
