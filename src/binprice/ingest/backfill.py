"""Gap filling from REST `historicalTrades` while the stream goes on.

A gap is a range of ids the stream skipped (a disconnect, a restart, a dropped frame). The
backfiller pages through `historicalTrades?fromId=` (1000 per page, weight 25) and hands over only
ids the tracker still misses, so a trade that arrives late on the stream is never stored twice.
If the exchange has no trade for an id (its first row is past `fromId`), that id is a confirmed
hole: it is reported, not looped on.
"""

from __future__ import annotations

import asyncio
from collections import deque

from binprice.errors import ExchangeError, GeoRestrictedError
from binprice.ingest.events import Emit
from binprice.ingest.rest import RestClient
from binprice.ingest.stats import IngestStats
from binprice.ingest.tracker import OnGap, Tracker

#: Attempts per page before the gap is set aside and retried later.
PAGE_ATTEMPTS = 5
RETRY_LATER_SECONDS = 30.0


class Backfiller:
    """Fills gaps one at a time, oldest first, in one task."""

    def __init__(
        self,
        rest: RestClient,
        tracker: Tracker,
        stats: IngestStats,
        emit: Emit,
        on_hole: OnGap | None = None,
    ) -> None:
        self._rest = rest
        self._on_hole = on_hole
        self._tracker = tracker
        self._stats = stats
        self._emit = emit
        self._pending: deque[tuple[str, int, int]] = deque()
        self._wake = asyncio.Event()
        self.holes: list[tuple[str, int, int]] = []

    def request(self, symbol: str, first: int, last: int) -> None:
        self._pending.append((symbol, first, last))
        self._wake.set()

    @property
    def idle(self) -> bool:
        return not self._pending

    async def run(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            symbol, first, last = self._pending[0]
            try:
                await self._fill(symbol, first, last)
            except GeoRestrictedError:
                raise
            except ExchangeError as exc:
                self._emit("backfill_error", f"{symbol}: backfill of {first}..{last} failed: {exc}")
                self._pending.rotate(-1)
                await asyncio.sleep(RETRY_LATER_SECONDS)
                continue
            self._pending.popleft()

    async def _fill(self, symbol: str, first: int, last: int) -> None:
        gaps = self._tracker.tracks[symbol].gaps
        while True:
            missing = gaps.within(first, last)
            if not missing:
                return
            from_id = missing[0][0]
            try:
                page = await self._rest.historical_trades(symbol, from_id, PAGE_ATTEMPTS)
            finally:
                self._stats.rate_limited = self._rest.rate_limited
            if not page or page[0].trade_id > from_id:
                end = last if not page else min(last, page[0].trade_id - 1)
                self._hole(symbol, from_id, end)
                if not page:
                    return
            wanted = [t for t in page if first <= t.trade_id <= last]
            taken = self._tracker.accept_backfill(symbol, wanted)
            if taken:
                self._emit("backfill", f"{symbol}: backfilled {taken} trades from {from_id}")
            if page[-1].trade_id >= last:
                return

    def _hole(self, symbol: str, first: int, last: int) -> None:
        self._tracker.tracks[symbol].gaps.remove(first, last)
        self.holes.append((symbol, first, last))
        if self._on_hole is not None:
            self._on_hole(symbol, first, last)
        self._stats.symbol(symbol).missing += last - first + 1
        self._emit("hole", f"{symbol}: the exchange has no trades {first}..{last}; recorded")
