"""The `gaps` rows of a running ingest: pending until the next commit, then written first.

The rule that makes a hole never silent: a gap's row is committed before any trade beyond it.
Gaps are noted synchronously (`add`), before the trade that revealed them is buffered; the
writers flush the pending rows before every commit, so no batch holding a trade past a gap can
commit first. If the process dies before a row is written, the trades past it were not
committed either: they are in the spool (whose ids the next start re-examines) or gone, and then
the next start finds the same range again.

The module's functions are the same statements on a caller's connection, for the archive
import's timeline pass (`history/_timeline.py`): the stored ids around a range, the ids missing
inside it, its open gaps, recording and settling them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from binprice.db.gaps import (
    ABSENT_SQL,
    AGG_MISSING_IN_RANGE_SQL,
    AGG_NEXT_STORED_SQL,
    AGG_PREV_STORED_SQL,
    AGG_SETTLE_SQL,
    ANY_COMPRESSED_SQL,
    HOLES_SQL,
    MISSING_IN_RANGE_ALL_SQL,
    MISSING_IN_RANGE_SQL,
    NEXT_STORED_ALL_SQL,
    NEXT_STORED_SQL,
    OPEN_GAPS_SQL,
    OPEN_WITHIN_SQL,
    PREV_STORED_ALL_SQL,
    PREV_STORED_SQL,
    REOPEN_HOLE_SQL,
    SETTLE_ALL_SQL,
    SETTLE_SQL,
    STATE_SQL,
    UPSERT_SQL,
    uncovered,
)
from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market

if TYPE_CHECKING:
    import psycopg

#: One gap's range of ids: (symbol, first id, last id), both ends included.
GapSpan = tuple[str, int, int]
#: Higher than any trade id (a PostgreSQL bigint).
_ID_CEILING = 2**63 - 1


async def stored_before(
    conn: psycopg.AsyncConnection[Any],
    symbol: str,
    trade_id: int,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> int | None:
    """The highest stored id of `symbol` below `trade_id` (in rows or blocks), None if none."""
    if kind is TradeKind.AGG_TRADES:
        return await _scalar(conn, AGG_PREV_STORED_SQL, symbol, trade_id, market)
    if await _any_compressed(conn, market):
        return await _scalar_all(conn, PREV_STORED_ALL_SQL, symbol, trade_id, market)
    return await _scalar(conn, PREV_STORED_SQL, symbol, trade_id, market)


async def stored_after(
    conn: psycopg.AsyncConnection[Any],
    symbol: str,
    trade_id: int,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> int | None:
    """The lowest stored id of `symbol` above `trade_id` (in rows or blocks), None if none."""
    if kind is TradeKind.AGG_TRADES:
        return await _scalar(conn, AGG_NEXT_STORED_SQL, symbol, trade_id, market)
    if await _any_compressed(conn, market):
        return await _scalar_all(conn, NEXT_STORED_ALL_SQL, symbol, trade_id, market)
    return await _scalar(conn, NEXT_STORED_SQL, symbol, trade_id, market)


async def last_stored(
    conn: psycopg.AsyncConnection[Any],
    symbol: str,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> int | None:
    """The highest trade id (or aggregate id) stored for `symbol`, None if none."""
    return await stored_before(conn, symbol, _ID_CEILING, market=market, kind=kind)


async def _scalar(
    conn: psycopg.AsyncConnection[Any], sql: str, symbol: str, trade_id: int, market: Market
) -> int | None:
    cur = await conn.execute(sql, (market.number, symbol, trade_id))
    row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def _any_compressed(conn: psycopg.AsyncConnection[Any], market: Market) -> bool:
    """Whether stored ids may be in blocks too (a month of `market` is compressed)."""
    cur = await conn.execute(ANY_COMPRESSED_SQL, (market.number,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def _scalar_all(
    conn: psycopg.AsyncConnection[Any], sql: str, symbol: str, trade_id: int, market: Market
) -> int | None:
    cur = await conn.execute(sql, {"symbol": symbol, "id": trade_id, "market": market.number})
    row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def missing_in_range(
    conn: psycopg.AsyncConnection[Any],
    symbol: str,
    first: int,
    last: int,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> list[tuple[int, int]]:
    """The ranges of `first..last` neither stored nor in a recorded hole or skip."""
    if kind is TradeKind.AGG_TRADES:
        sql = AGG_MISSING_IN_RANGE_SQL
    elif await _any_compressed(conn, market):
        sql = MISSING_IN_RANGE_ALL_SQL
    else:
        sql = MISSING_IN_RANGE_SQL
    params = {"symbol": symbol, "first": first, "last": last, "market": market.number}
    cur = await conn.execute(sql, params)
    return [(int(a), int(b)) for a, b in await cur.fetchall()]


async def open_within(
    conn: psycopg.AsyncConnection[Any],
    symbol: str,
    first: int,
    last: int,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> list[tuple[int, int]]:
    """The open gaps of `symbol` overlapping `first..last`, by first id."""
    params = (market.number, kind.number, symbol, first, last)
    cur = await conn.execute(OPEN_WITHIN_SQL, params)
    return [(int(a), int(b)) for a, b in await cur.fetchall()]


async def record_gap(
    conn: psycopg.AsyncConnection[Any],
    symbol: str,
    first: int,
    last: int,
    state: str,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> None:
    """Record (upsert) the gap `first..last` of `symbol` in `state`."""
    await conn.execute(UPSERT_SQL, (market.number, kind.number, symbol, first, last, state))


async def settle_gap(
    conn: psycopg.AsyncConnection[Any],
    symbol: str,
    first: int,
    last: int,
    *,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> bool:
    """Mark the open gap `first..last` filled if all its ids are accounted for; True if it was."""
    if kind is TradeKind.AGG_TRADES:
        sql = AGG_SETTLE_SQL
    else:
        sql = SETTLE_ALL_SQL if await _any_compressed(conn, market) else SETTLE_SQL
    params = {
        "symbol": symbol,
        "first": first,
        "last": last,
        "market": market.number,
        "kind": kind.number,
    }
    cur = await conn.execute(sql, params)
    return await cur.fetchone() is not None


class GapRows:
    """Pending gap rows of one market and kind, and the connection that writes them."""

    def __init__(
        self, url: str, market: Market = DEFAULT_MARKET, kind: TradeKind = DEFAULT_KIND
    ) -> None:
        self._url = url
        self.market = market
        self.kind = kind
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._pending: list[tuple[str, int, int, str]] = []
        self._lock = asyncio.Lock()
        self.recorded = 0

    @property
    def _keys(self) -> tuple[int, int]:
        """The market and kind every statement on `gaps` is filtered by."""
        return self.market.number, self.kind.number

    def add(self, symbol: str, first: int, last: int, state: str) -> None:
        """Note a row to write with the next flush (state open, hole or skipped)."""
        self._pending.append((symbol, first, last, state))

    @property
    def pending(self) -> tuple[tuple[str, int, int, str], ...]:
        """Rows noted and not yet committed: (symbol, first, last, state)."""
        return tuple(self._pending)

    async def connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        import psycopg

        from binprice.db import CONNECT_TIMEOUT_SECONDS, database_error

        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            except psycopg.OperationalError as exc:
                raise database_error(self._url, exc) from None
        return self._conn

    async def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    async def flush(self) -> None:
        """Commit every pending row. Raises psycopg.Error or DatabaseUnavailableError if the
        database is unavailable (the rows stay pending)."""
        if not self._pending:
            return
        import psycopg

        async with self._lock:
            count = len(self._pending)
            if not count:
                return
            rows = self._pending[:count]
            try:
                conn = await self.connection()
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(UPSERT_SQL, [(*self._keys, *r) for r in rows])
            except psycopg.Error:
                await self._reset()
                raise
            del self._pending[:count]
            self.recorded += count

    async def settle(self, candidates: Iterable[GapSpan]) -> list[GapSpan]:
        """The candidates now marked filled (or no longer open). Database errors leave them
        for the next round."""
        import psycopg

        from binprice.errors import DatabaseError

        done: list[GapSpan] = []
        try:
            await self.flush()
            conn = await self.connection()
            for symbol, first, last in candidates:
                settled = await settle_gap(
                    conn, symbol, first, last, market=self.market, kind=self.kind
                )
                if settled or await self._not_open(symbol, first, last):
                    done.append((symbol, first, last))
        except (psycopg.Error, DatabaseError):
            await self._reset()
            return []
        return done

    async def _not_open(self, symbol: str, first: int, last: int) -> bool:
        """The row is no longer open (it became a hole, say): nothing left to settle."""
        return await self.state(symbol, first, last) not in ("open", None)

    async def state(self, symbol: str, first: int, last: int) -> str | None:
        """The state of the row for exactly `first..last`, None if there is none."""
        conn = await self.connection()
        cur = await conn.execute(STATE_SQL, (*self._keys, symbol, first, last))
        row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def holes(self, symbols: list[str]) -> list[GapSpan]:
        """The recorded holes of `symbols`."""
        conn = await self.connection()
        cur = await conn.execute(HOLES_SQL, (*self._keys, symbols))
        return [(str(s), int(a), int(b)) for s, a, b in await cur.fetchall()]  # type: ignore[call-overload]

    async def reopen(self, symbol: str, first: int, last: int) -> None:
        """Make the hole `first..last` an open gap again (committed at once, before any trade
        inside it is stored: a hole must never count ids that are stored)."""
        await self.flush()
        conn = await self.connection()
        await conn.execute(REOPEN_HOLE_SQL, (*self._keys, symbol, first, last))

    async def open_gaps(self, symbols: list[str]) -> list[tuple[GapSpan, list[tuple[int, int]]]]:
        """Gaps an earlier run left open, each with the ids still neither stored nor known to
        be absent (so a half-filled gap resumes where it stopped)."""
        conn = await self.connection()
        cur = await conn.execute(OPEN_GAPS_SQL, (*self._keys, symbols))
        gaps = [(str(s), int(a), int(b)) for s, a, b in await cur.fetchall()]  # type: ignore[call-overload]
        absent: dict[str, list[tuple[int, int]]] = {}
        cur = await conn.execute(ABSENT_SQL, (*self._keys, symbols))
        for s, a, b in await cur.fetchall():
            absent.setdefault(str(s), []).append((int(a), int(b)))  # type: ignore[call-overload]
        out = []
        for symbol, first, last in gaps:
            missing: list[tuple[int, int]] = []
            found = await missing_in_range(
                conn, symbol, first, last, market=self.market, kind=self.kind
            )
            for a, b in found:
                missing.extend(uncovered(a, b, absent.get(symbol, [])))
            out.append(((symbol, first, last), missing))
        return out

    async def close(self) -> None:
        await self._reset()
