"""The ingest side of the `gaps` table: record gaps durably, resume them, mark them filled.

The rule that makes a hole never silent: a gap's row is committed before any trade beyond it.
The tracker reports a gap synchronously, before it buffers the trade that revealed it; the row
waits in `pending`, and the writers call `flush()` before every commit, so no batch holding a
trade past the gap can commit first. If the process dies before the row is written, the trades
past it were not committed either: they are in the spool (whose ids `resume` re-examines) or
gone, and then the next start's first frame reveals the same range again.

`filled` is decided in the database, not in memory: a gap is settled once every id in it is
stored or inside a recorded hole/skip, so it is true even across crashes.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from binprice.binance import Trade
from binprice.gaps import MISSING_IN_RANGE_SQL, OPEN_GAPS_SQL, SETTLE_SQL, UPSERT_SQL, uncovered
from binprice.ingest.events import Emit
from binprice.ingest.stats import IngestStats
from binprice.ingest.tracker import OnGap, Tracker

if TYPE_CHECKING:
    import psycopg

#: How often the settle task looks for gaps whose ids have all been fetched.
SETTLE_INTERVAL_SECONDS = 1.0

Range = tuple[str, int, int]


class GapLog:
    """Pending gap rows, the connection that writes them, and the gaps still open."""

    def __init__(self, url: str, emit: Emit) -> None:
        self._url = url
        self._emit = emit
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._pending: list[tuple[str, int, int, str]] = []
        self._lock = asyncio.Lock()
        #: Open gaps (recorded or pending) not yet known to be filled.
        self.unsettled: list[Range] = []
        self.recorded = 0
        self.filled = 0

    # --- called synchronously by the tracker and the backfiller -------------------------

    def opened(self, symbol: str, first: int, last: int) -> None:
        self._pending.append((symbol, first, last, "open"))
        self.unsettled.append((symbol, first, last))
        self._emit("gap", f"{symbol}: trades {first}..{last} missing; fetching them")

    def skipped(self, symbol: str, first: int, last: int) -> None:
        self._pending.append((symbol, first, last, "skipped"))
        self._emit(
            "gap_skipped",
            f"{symbol}: trades {first}..{last} ({last - first + 1:,}) are over --backfill-max; "
            "recorded as skipped",
        )

    def hole(self, symbol: str, first: int, last: int) -> None:
        self._pending.append((symbol, first, last, "hole"))

    def resumed(self, symbol: str, first: int, last: int, missing: int) -> None:
        self._emit(
            "gap_resumed",
            f"{symbol}: gap {first}..{last} left open by an earlier run; fetching its "
            f"{missing:,} missing trades",
        )

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- database ---------------------------------------------------------------------------

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        import psycopg

        from binprice.db import CONNECT_TIMEOUT_SECONDS

        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        return self._conn

    async def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    async def flush(self) -> None:
        """Commit every pending row. Raises psycopg.Error if the database is unavailable
        (the writers treat that like a failed commit and retry)."""
        if not self._pending:
            return
        import psycopg

        async with self._lock:
            count = len(self._pending)
            if not count:
                return
            rows = self._pending[:count]
            try:
                conn = await self._connection()
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(UPSERT_SQL, rows)
            except psycopg.Error:
                await self._reset()
                raise
            del self._pending[:count]
            self.recorded += count

    async def settle(self, still_missing: Iterable[Range]) -> int:
        """Mark filled the open gaps that no longer miss anything in memory and whose ids are
        all committed; return how many. Database errors leave them for the next round."""
        import psycopg

        waiting = set(still_missing)
        candidates = [g for g in self.unsettled if g not in waiting]
        if not candidates:
            return 0
        done: list[Range] = []
        try:
            await self.flush()
            conn = await self._connection()
            for symbol, first, last in candidates:
                cur = await conn.execute(
                    SETTLE_SQL, {"symbol": symbol, "first": first, "last": last}
                )
                if await cur.fetchone() is not None or await self._not_open(symbol, first, last):
                    done.append((symbol, first, last))
        except psycopg.Error:
            await self._reset()
            return 0
        for gap in done:
            self.unsettled.remove(gap)
        self.filled += len(done)
        return len(done)

    async def _not_open(self, symbol: str, first: int, last: int) -> bool:
        """The row is no longer open (it became a hole, say): nothing left to settle."""
        conn = await self._connection()
        cur = await conn.execute(
            "SELECT state FROM gaps WHERE symbol = %s AND first_id = %s AND last_id = %s",
            (symbol, first, last),
        )
        row = await cur.fetchone()
        return row is not None and row[0] != "open"

    async def open_gaps(self, symbols: Iterable[str]) -> list[tuple[Range, list[tuple[int, int]]]]:
        """Gaps an earlier run left open, each with the ids still neither stored nor known to
        be absent (so a half-filled gap resumes where it stopped)."""
        conn = await self._connection()
        cur = await conn.execute(OPEN_GAPS_SQL, (list(symbols),))
        gaps = [(str(s), int(a), int(b)) for s, a, b in await cur.fetchall()]  # type: ignore[call-overload]
        absent: dict[str, list[tuple[int, int]]] = {}
        cur = await conn.execute(
            "SELECT symbol, first_id, last_id FROM gaps "
            "WHERE state IN ('hole', 'skipped') AND symbol = ANY(%s)",
            (list(symbols),),
        )
        for s, a, b in await cur.fetchall():
            absent.setdefault(str(s), []).append((int(a), int(b)))  # type: ignore[call-overload]
        out = []
        for symbol, first, last in gaps:
            cur = await conn.execute(
                MISSING_IN_RANGE_SQL, {"symbol": symbol, "first": first, "last": last}
            )
            missing: list[tuple[int, int]] = []
            for a, b in await cur.fetchall():
                missing.extend(uncovered(int(a), int(b), absent.get(symbol, [])))  # type: ignore[call-overload]
            out.append(((symbol, first, last), missing))
        return out

    async def close(self) -> None:
        await self._reset()


def spooled_extent(
    chunks: Iterable[list[Trade]], last_stored: dict[str, int]
) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """Per symbol, for spooled trades above the last stored id: the highest spooled id and the
    ranges between the last stored id and it that the spool does not hold.

    The spool holds trades a previous run received but could not commit; a gap it saw in them
    may never have reached the database, so it is worked out again from the ids themselves.
    """
    ids: dict[str, array[int]] = {}
    for chunk in chunks:
        for trade in chunk:
            base = last_stored.get(trade.symbol)
            if base is None or trade.trade_id > base:
                ids.setdefault(trade.symbol, array("q")).append(trade.trade_id)
    out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for symbol, found in ids.items():
        ordered = sorted(set(found))
        base = last_stored.get(symbol)
        prev = ordered[0] - 1 if base is None else base
        holes = []
        for tid in ordered:
            if tid > prev + 1:
                holes.append((prev + 1, tid - 1))
            prev = tid
        out[symbol] = (ordered[-1], holes)
    return out


async def settle_periodically(log: GapLog, still_missing: Callable[[], list[Range]]) -> None:
    """Keep settling gaps while the run lasts (cancelled at the end)."""
    while True:
        await asyncio.sleep(SETTLE_INTERVAL_SECONDS)
        await log.settle(still_missing())


async def resume(
    tracker: Tracker,
    log: GapLog,
    request: OnGap,
    stats: IngestStats,
    symbols: Iterable[str],
    last_stored: dict[str, int],
    spooled: Iterable[list[Trade]],
) -> None:
    """Start tracking `symbols` where the last run left them.

    The tracker resumes after the highest id stored or spooled; gaps the spool reveals are
    recorded and fetched like any other; open gaps from earlier runs are fetched again (only
    their still-missing ids). The downtime itself is found by the first streamed frame.
    """
    wanted = list(symbols)
    extent = spooled_extent(spooled, last_stored)
    for symbol in wanted:
        stored = last_stored.get(symbol)
        top = extent.get(symbol, (None, []))[0]
        known = [i for i in (stored, top) if i is not None]
        tracker.start(symbol, max(known) if known else None)
        stats.symbol(symbol).last_trade_id = stored
    for (symbol, first, last), missing in await log.open_gaps(wanted):
        log.unsettled.append((symbol, first, last))
        for a, b in missing:
            tracker.resume_gap(symbol, a, b)
            request(symbol, a, b)
        if missing:
            log.resumed(symbol, first, last, sum(b - a + 1 for a, b in missing))
    for symbol in wanted:
        for first, last in extent.get(symbol, (None, []))[1]:
            tracker.add_gap(symbol, first, last)
