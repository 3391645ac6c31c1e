"""The bounded hand-off between stream readers and the batch writer.

Readers must never wait (Binance drops a connection whose pings go unanswered, and whatever it
sends meanwhile is lost for good), so `put` never blocks: trades collect in memory up to
`memory_limit`, and past that the whole in-memory backlog spills to the fsynced disk spool in one
chunk. The writer takes spooled chunks first (oldest data first), then memory. Memory is bounded
by `memory_limit` trades whatever the database does.

When the spool cannot take a chunk either (disk full, read-only, no spool at all), the trades
are dropped — memory must stay bounded — but never silently: their ids are kept as ranges in
`dropped`, which the gap keeper turns into recorded gaps (and fetches again from REST) before
anything beyond them is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from binprice.db.aggcopy import AggCopyEncoder
from binprice.db.copy import Batch, CopyEncoder
from binprice.exchange.protocol import SeriesRecord
from binprice.ingest.recorder import Recorder
from binprice.ingest.spool import Spool, SpoolError
from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market

#: Per symbol, inclusive id ranges of trades that had to be dropped.
Dropped = dict[str, list[tuple[int, int]]]


class RecordEncoder(Protocol):
    """Encodes a run's records as one COPY batch (`CopyEncoder`, `AggCopyEncoder`)."""

    # Any: each encoder takes the records of its own kind (trades, or aggregates).
    def batch(self, trades: Any) -> Batch: ...


def encoder_of(market: Market, kind: TradeKind) -> RecordEncoder:
    """The COPY encoder of a run capturing `kind` in `market`."""
    if kind is TradeKind.AGG_TRADES:
        return AggCopyEncoder(market)
    return CopyEncoder(market, rollup=True)


def id_ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges covering `ids`."""
    out: list[tuple[int, int]] = []
    for tid in sorted(set(ids)):
        if out and tid == out[-1][1] + 1:
            out[-1] = (out[-1][0], tid)
        else:
            out.append((tid, tid))
    return out


class TradeBuffer:
    """Reader-side `put`, writer-side `take`; single event loop, no locks."""

    def __init__(
        self,
        spool: Spool | None,
        memory_limit: int,
        recorder: Recorder,
        market: Market = DEFAULT_MARKET,
        kind: TradeKind = DEFAULT_KIND,
    ) -> None:
        self.spool = spool
        self.memory_limit = memory_limit
        self.items: list[SeriesRecord] = []
        self._recorder = recorder
        #: Batches are encoded as COPY rows of the run's market and kind, a trade batch with
        #: its per-minute rollup (see `TradeWriter`, `AggTradeWriter`).
        self._encoder = encoder_of(market, kind)
        self._ready = asyncio.Event()
        #: Why the last spool write failed (None while the spool works).
        self.spool_error: str | None = None
        self._dropped: Dropped = {}
        self.dropped_ready = asyncio.Event()
        if self._spooled():
            self._ready.set()

    def _spooled(self) -> int:
        return 0 if self.spool is None else len(self.spool)

    def put(self, trade: SeriesRecord) -> None:
        items = self.items
        items.append(trade)
        if len(items) >= self.memory_limit:
            self.spill()
        self._ready.set()

    def spill(self) -> None:
        """Move everything in memory to the spool (durably), or record it as dropped."""
        if not self.items:
            return
        trades, self.items = self.items, []
        batch = self._encoder.batch(trades)
        if self.keep(batch, trades):
            self._recorder.spilled(len(trades))

    def keep(self, batch: Batch, trades: Sequence[SeriesRecord] | None = None) -> bool:
        """Put an uncommitted batch in the spool; if that fails, record its ids as dropped.
        True if it was spooled."""
        if self.spool is not None:
            try:
                self.spool.append(batch)
            except SpoolError as exc:
                self.spool_error = str(exc)
            else:
                self.spool_error = None
                return True
        elif self.spool_error is None:
            self.spool_error = "running without a spool"
        self._drop(batch.decoded() if trades is None else trades)
        return False

    def _drop(self, trades: Sequence[SeriesRecord]) -> None:
        by_symbol: dict[str, list[int]] = {}
        for trade in trades:
            by_symbol.setdefault(trade.symbol, []).append(trade.trade_id)
        for symbol, ids in by_symbol.items():
            self._dropped.setdefault(symbol, []).extend(id_ranges(ids))
        self._recorder.dropped(len(trades))
        self.dropped_ready.set()

    def take_dropped(self) -> Dropped:
        """The id ranges dropped since the last call (the gap keeper records them)."""
        dropped, self._dropped = self._dropped, {}
        self.dropped_ready.clear()
        return dropped

    def __len__(self) -> int:
        """Trades waiting in memory (spooled chunks are counted by the spool)."""
        return len(self.items)

    @property
    def empty(self) -> bool:
        return not self.items and not self._spooled()

    def take(self, max_batch: int) -> tuple[Batch | None, Path | None]:
        """The next batch: the oldest spool chunk (with its path, to delete after commit),
        else up to `max_batch` trades from memory, encoded."""
        if self.empty:
            self._ready.clear()
            return None, None
        chunk = self.spool.take_oldest() if self.spool is not None else None
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
        if path is not None and self.spool is not None:
            self.spool.remove(path)

    async def wait(self) -> None:
        """Wait until something is buffered."""
        if self.empty:
            self._ready.clear()
            await self._ready.wait()
