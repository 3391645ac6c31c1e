"""Imported aggregate ids as part of a symbol's timeline: their holes recorded in `gaps`
with kind 1 (aggregate trades), as `_timeline` records the trades'.

Binance's aggregate ids grow by one per aggregate within a symbol of a market, so after a
symbol's `aggTrades` files are in, every range of aggregate ids missing around them is a gap:

- between two files of the range (a refused or missing file): `open`;
- between the range and aggregates stored before it: `skipped` (days not asked for), `open` if
  a file at the start of the range failed;
- between the range and aggregates stored after it (live capture): `open` if the range reaches
  the days the archive has not published yet or a file at its end failed, else `skipped`.

Holes inside one file were recorded `open` by the loader with the file's chunks. Open gaps
whose ids are all stored by now (a re-run, a republished file) are settled `filled`. Unlike
the trades' pass, nothing is fetched from REST: `ingest --stream aggTrade` backfills open
aggregate gaps through `aggTrades?fromId=`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from binprice.db import gaprows
from binprice.db.imports import import_extents
from binprice.events import EventKind
from binprice.history._results import GapResult
from binprice.history._timeline import Report, Span
from binprice.kinds import TradeKind

#: Higher than any aggregate id (a PostgreSQL bigint).
AGG = TradeKind.AGG_TRADES
_WHAT = {"open": "to be fetched", "skipped": "outside the range"}


@dataclass(slots=True)
class AggTimeline:
    """One symbol's pass over its aggregate ids."""

    conn: psycopg.AsyncConnection[Any]
    span: Span
    report: Report

    async def run(self) -> tuple[int | None, list[GapResult]]:
        """Record the holes; return the highest stored aggregate id and the gaps recorded."""
        span, conn, gaps = self.span, self.conn, []
        symbol, market = span.symbol, span.market
        extents = await import_extents(conn, symbol, span.start, span.end, market, kind=AGG)
        if extents:
            lo, hi = extents[0]
            for first, last in extents[1:]:  # by first id; `hi` is the highest last id so far
                if first > hi + 1:
                    missing = gaprows.missing_in_range(
                        conn, symbol, hi + 1, first - 1, market=market, kind=AGG
                    )
                    for a, b in await missing:
                        gaps.append(await self._record(a, b, "open"))
                hi = max(hi, last)
            before = await gaprows.stored_before(conn, symbol, lo, market=market, kind=AGG)
            if before is not None and before < lo - 1:
                state = "open" if span.failed_before else "skipped"
                gaps.append(await self._record(before + 1, lo - 1, state))
            after = await gaprows.stored_after(conn, symbol, hi, market=market, kind=AGG)
            if after is not None and after > hi + 1:
                state = "open" if span.failed_after or span.reaches_unpublished else "skipped"
                gaps.append(await self._record(hi + 1, after - 1, state))
            for first, last in await gaprows.open_within(
                conn, symbol, lo, hi, market=market, kind=AGG
            ):
                await gaprows.settle_gap(conn, symbol, first, last, market=market, kind=AGG)
        return await last_stored_agg(conn, span), gaps

    async def _record(self, first: int, last: int, state: str) -> GapResult:
        span = self.span
        await gaprows.record_gap(
            self.conn, span.symbol, first, last, state, market=span.market, kind=AGG
        )
        self.report(
            EventKind.GAP,
            f"{span.symbol}: aggregate trades {first}..{last} ({last - first + 1:,}) missing; "
            f"recorded as {state} ({_WHAT.get(state, state)})",
        )
        return GapResult(first, last, state)


async def last_stored_agg(conn: psycopg.AsyncConnection[Any], span: Span) -> int | None:
    """The highest aggregate id stored for the span's symbol, None if none."""
    return await gaprows.last_stored(conn, span.symbol, market=span.market, kind=AGG)
