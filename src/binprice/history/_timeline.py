"""Imported ids as part of a symbol's one timeline: holes recorded, the tail fetched from REST.

Binance Spot ids grow by one per trade (protocol notes §8), so after a symbol's files are in,
every range of ids missing around them is written to `gaps`, the table `binprice gaps --verify`
and live capture read:

- inside a file, or between two files of the range: `open` (a refused or missing file, or a hole
  in the archive); with REST it is fetched at once, and what REST lacks too becomes a `hole`;
- between the range and trades stored before it: `skipped` (days the user did not ask for),
  `open` if a file at the start of the range failed;
- between the range and trades stored after it (live capture): `open` if the range reaches the
  days the archive has not published yet (the ingestor fetches open gaps when it starts),
  otherwise `skipped`.

Open gaps whose ids are all stored by now (a re-run, a republished file) are settled `filled`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import psycopg

from binprice.db.copy import CopyEncoder
from binprice.db.gaprows import (
    last_stored,
    missing_in_range,
    open_within,
    record_gap,
    settle_gap,
    stored_after,
    stored_before,
)
from binprice.db.imports import import_extents
from binprice.db.writer import TradeWriter
from binprice.errors import ExchangeError
from binprice.events import EventKind
from binprice.exchange.rest import RestClient
from binprice.history._results import GapResult
from binprice.markets import Market

#: Attempts per REST page before the fetch is given up (the gap then stays open).
PAGE_ATTEMPTS = 5
#: A REST progress event every this many pages.
REST_REPORT_PAGES = 50

AsyncConnection = psycopg.AsyncConnection[Any]
T = TypeVar("T")
Report = Callable[[EventKind, str], None]


@dataclass(frozen=True, slots=True)
class Span:
    """What the timeline pass needs to know about one symbol's run."""

    symbol: str
    start: date
    end: date
    #: A file failed (refused, missing) before the first / after the last stored file.
    failed_before: bool
    failed_after: bool
    #: The range reaches days the archive has not published yet.
    reaches_unpublished: bool
    #: The market the symbol's ids, gaps and REST pages are of.
    market: Market = Market.SPOT


@dataclass(slots=True)
class Timeline:
    """One symbol's pass; `rest` None means REST is not consulted."""

    conn: AsyncConnection
    span: Span
    rest: RestClient | None
    writer: TradeWriter | None
    report: Report
    rest_trades: int = 0

    async def run(self) -> tuple[int | None, list[GapResult]]:
        """Record and fill the holes; return the highest stored id and the gaps recorded."""
        span, gaps = self.span, []
        extents = await import_extents(self.conn, span.symbol, span.start, span.end, span.market)
        if not extents:
            return await self._last_stored(), []
        lo, hi = extents[0][0], extents[0][1]
        for first, last in extents[1:]:  # by first id; `hi` is the highest last id so far
            if first > hi + 1:
                for a, b in await self._missing(hi + 1, first - 1):
                    gaps.append(await self._record(a, b, "open"))
            hi = max(hi, last)
        before = await stored_before(self.conn, span.symbol, lo, market=span.market)
        if before is not None and before < lo - 1:
            state = "open" if span.failed_before else "skipped"
            gaps.append(await self._record(before + 1, lo - 1, state))
        if self.rest is not None and span.reaches_unpublished:
            hi = max(hi, await self._rest_or_report(self._tail(hi + 1), hi))
        after = await stored_after(self.conn, span.symbol, hi, market=span.market)
        if after is not None and after > hi + 1:
            state = "open" if span.failed_after or span.reaches_unpublished else "skipped"
            gaps.append(await self._record(hi + 1, after - 1, state))
        if self.rest is not None:
            gaps.extend(await self._rest_or_report(self._fill_open(lo, hi), []))
        await self._settle(lo, hi)
        return await self._last_stored(), gaps

    async def _rest_or_report(self, work: Awaitable[T], fallback: T) -> T:
        """REST failing (unreachable, refused) leaves the gaps open for a later run."""
        try:
            return await work
        except ExchangeError as exc:
            self.report(EventKind.REST, f"{self.span.symbol}: REST failed ({exc}); gaps stay open")
            return fallback

    async def _last_stored(self) -> int | None:
        return await last_stored(self.conn, self.span.symbol, market=self.span.market)

    async def _missing(self, first: int, last: int) -> list[tuple[int, int]]:
        span = self.span
        return await missing_in_range(self.conn, span.symbol, first, last, market=span.market)

    async def _record(self, first: int, last: int, state: str) -> GapResult:
        await record_gap(self.conn, self.span.symbol, first, last, state, market=self.span.market)
        what = {"open": "to be fetched", "skipped": "outside the range", "hole": "absent"}
        self.report(
            EventKind.GAP,
            f"{self.span.symbol}: trades {first}..{last} ({last - first + 1:,}) missing; "
            f"recorded as {state} ({what.get(state, state)})",
        )
        return GapResult(first, last, state)

    async def _tail(self, first: int) -> int:
        """Fetch the days not yet archived from REST, from `first` to the range's end."""
        end_ms = int(datetime.combine(self.span.end, datetime.min.time(), UTC).timestamp() * 1000)
        upper = await stored_after(self.conn, self.span.symbol, first - 1, market=self.span.market)
        last = None if upper is None else upper - 1
        stored, holes, top = await self._fetch(first, last, end_ms)
        for a, b in holes:
            await self._record(a, b, "hole")
        self.report(
            EventKind.REST,
            f"{self.span.symbol}: {stored:,} trades from REST after the archive",
        )
        return top if top is not None else first - 1

    async def _fill_open(self, lo: int, hi: int) -> list[GapResult]:
        """Fetch the open gaps in `lo..hi` from REST; what REST lacks too is a hole."""
        found = []
        for first, last in await self._open_within(lo, hi):
            _stored, holes, _top = await self._fetch(first, last, None)
            for a, b in holes:
                found.append(await self._record(a, b, "hole"))
        return found

    async def _fetch(
        self, first: int, last: int | None, end_ms: int | None
    ) -> tuple[int, list[tuple[int, int]], int | None]:
        """Page `historicalTrades` from `first` up to `last` (None: until caught up) and
        before `end_ms`; store the trades; return (stored, holes, highest id stored)."""
        assert self.rest is not None and self.writer is not None
        symbol, encoder = self.span.symbol, CopyEncoder(self.span.market)
        stored, holes, top, from_id, pages = 0, [], None, first, 0
        while last is None or from_id <= last:
            page = await self.rest.historical_trades(symbol, from_id, PAGE_ATTEMPTS)
            pages += 1
            if page and page[0].trade_id > from_id:
                end = page[0].trade_id - 1 if last is None else min(last, page[0].trade_id - 1)
                holes.append((from_id, end))
            elif not page and last is not None:
                holes.append((from_id, last))
            wanted = [
                t
                for t in page
                if (last is None or t.trade_id <= last) and (end_ms is None or t.time_ms < end_ms)
            ]
            if wanted:
                new, _ = await self.writer.write(encoder.batch(wanted))
                stored += new.get(symbol, 0)
                top = wanted[-1].trade_id
            if pages % REST_REPORT_PAGES == 0:
                self.report(
                    EventKind.REST, f"{symbol}: {stored:,} trades from REST, up to id {top}"
                )
            if len(wanted) < len(page) or len(page) < self.rest.page_limit:
                break  # past the end of the range, or caught up with the exchange
            from_id = page[-1].trade_id + 1
        self.rest_trades += stored
        return stored, holes, top

    async def _settle(self, lo: int, hi: int) -> None:
        span = self.span
        for first, last in await self._open_within(lo, hi):
            await settle_gap(self.conn, span.symbol, first, last, market=span.market)

    async def _open_within(self, lo: int, hi: int) -> list[tuple[int, int]]:
        return await open_within(self.conn, self.span.symbol, lo, hi, market=self.span.market)
