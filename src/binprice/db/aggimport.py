"""The archive import's SQL for aggregate trades: COPY into `agg_trades` with its staging
fallback, and the statements of the timeline pass over aggregate ids (gaps of kind 1).

The loader (`history/_load.py`) runs these on its sync connection, the timeline pass
(`history/_aggtimeline.py`) on the run's async one. `agg_trades` is not partitioned and keyed
by `(market, symbol, agg_id)`, so the probes are plain primary-key lookups, with no time bounds
to steer partition pruning (which the trades' statements in `db/imports.py` need).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from binprice.kinds import TradeKind
from binprice.markets import DEFAULT_MARKET, Market

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]

#: The columns of an aggregate trade's COPY row (`history._csv.CsvDecoder`'s order).
AGG_COLUMNS = (
    'symbol, agg_id, price, quantity, first_trade_id, last_trade_id, "timestamp", is_buyer_maker'
)
AGG_KIND = TradeKind.AGG_TRADES.number
AGG_STAGE_TABLE = "binprice_agg_trades_stage"
_CREATE_AGG_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {AGG_STAGE_TABLE} "
    "(LIKE agg_trades INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_TRUNCATE_AGG_STAGE = f"TRUNCATE {AGG_STAGE_TABLE}"
_INSERT_NEW_AGG_SQL = (
    f"INSERT INTO agg_trades ({AGG_COLUMNS}, market) SELECT {AGG_COLUMNS}, market "
    f"FROM {AGG_STAGE_TABLE} ON CONFLICT (market, symbol, agg_id) DO NOTHING"
)
_NEXT_AGG_SQL = (
    "SELECT min(agg_id) FROM agg_trades WHERE market = %s AND symbol = %s AND agg_id >= %s"
)
_PREV_AGG_SQL = (
    "SELECT max(agg_id) FROM agg_trades WHERE market = %s AND symbol = %s AND agg_id < %s"
)
_AFTER_AGG_SQL = (
    "SELECT min(agg_id) FROM agg_trades WHERE market = %s AND symbol = %s AND agg_id > %s"
)
#: A gap of aggregate ids: the trades' upsert (`db.gaps.UPSERT_SQL`) with the kind given.
_UPSERT_AGG_GAP_SQL = f"""
INSERT INTO gaps (market, kind, symbol, first_id, last_id, state)
VALUES (%s, {AGG_KIND}, %s, %s, %s, %s)
ON CONFLICT (market, kind, symbol, first_id, last_id) DO UPDATE SET state = EXCLUDED.state
WHERE gaps.state = 'open' AND EXCLUDED.state <> 'open'
"""
#: The runs of `first..last` with no stored aggregate: the stored ids in the range, bracketed
#: by the ends, and the holes between neighbours (one primary-key range read).
_MISSING_AGG_SQL = """
WITH s(agg_id) AS (
    SELECT agg_id FROM agg_trades
    WHERE market = %(market)s AND symbol = %(symbol)s AND agg_id BETWEEN %(first)s AND %(last)s
    UNION ALL SELECT %(first)s::bigint - 1
    UNION ALL SELECT %(last)s::bigint + 1
)
SELECT a, b FROM (
    SELECT agg_id + 1 AS a, lead(agg_id) OVER (ORDER BY agg_id) - 1 AS b FROM s
) AS w
WHERE b >= a
ORDER BY a
"""
_OPEN_AGG_WITHIN_SQL = f"""
SELECT first_id, last_id FROM gaps
WHERE market = %s AND kind = {AGG_KIND} AND symbol = %s AND state = 'open'
  AND last_id >= %s AND first_id <= %s
ORDER BY first_id
"""
#: An open gap of aggregate ids is filled once every id in it is stored.
_SETTLE_AGG_SQL = f"""
UPDATE gaps AS g SET state = 'filled', filled_at = now()
WHERE g.market = %(market)s AND g.kind = {AGG_KIND} AND g.symbol = %(symbol)s
  AND g.first_id = %(first)s AND g.last_id = %(last)s AND g.state = 'open'
  AND (SELECT count(*) FROM agg_trades AS t
       WHERE t.market = g.market AND t.symbol = g.symbol
         AND t.agg_id BETWEEN g.first_id AND g.last_id) = g.last_id - g.first_id + 1
RETURNING g.symbol
"""


def agg_copy_columns(market: Market) -> str:
    """The columns of `market`'s COPY rows: spot's leave the market to its default."""
    return AGG_COLUMNS if market is DEFAULT_MARKET else f"market, {AGG_COLUMNS}"


@contextmanager
def copy_agg_trades(conn: Connection, market: Market = DEFAULT_MARKET) -> Iterator[psycopg.Copy]:
    """A `COPY agg_trades FROM STDIN` of `market`'s rows; a stored id raises UniqueViolation."""
    statement = f"COPY agg_trades ({agg_copy_columns(market)}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(statement) as copy:
        yield copy


class AggStagedInsert:
    """COPY text blocks of aggregate trades inserted through a temporary staging table,
    skipping the ids already stored (another import, live capture)."""

    __slots__ = ("_conn", "_copy", "_ready")

    def __init__(self, conn: Connection, market: Market = DEFAULT_MARKET) -> None:
        self._conn = conn
        self._ready = False
        self._copy = f"COPY {AGG_STAGE_TABLE} ({agg_copy_columns(market)}) FROM STDIN"

    def insert(self, payload: bytes) -> int:
        """Insert the aggregates of `payload` not stored yet; return how many were new."""
        conn = self._conn
        if not self._ready:
            conn.execute(_CREATE_AGG_STAGE)
            self._ready = True
        with conn.cursor() as cur:
            cur.execute(_TRUNCATE_AGG_STAGE)
            with cur.copy(self._copy) as copy:
                copy.write(payload)
            cur.execute(_INSERT_NEW_AGG_SQL)
            return max(cur.rowcount, 0)


def next_stored_agg_id(
    conn: Connection, symbol: str, first_id: int, *, market: Market = DEFAULT_MARKET
) -> int | None:
    """The lowest stored aggregate id of `symbol` in `market` from `first_id` on."""
    row = conn.execute(_NEXT_AGG_SQL, (market.number, symbol, first_id)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def record_agg_gaps(
    conn: Connection,
    symbol: str,
    ranges: Iterable[tuple[int, int]],
    state: str,
    *,
    market: Market = DEFAULT_MARKET,
) -> None:
    """Record (upsert) gaps of aggregate ids (kind 1), in the caller's transaction."""
    rows = [(market.number, symbol, a, b, state) for a, b in ranges]
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_AGG_GAP_SQL, rows)


# --- the timeline pass (async) -------------------------------------------------------------


async def agg_stored_before(
    conn: AsyncConnection, symbol: str, agg_id: int, market: Market
) -> int | None:
    """The highest stored aggregate id of `symbol` below `agg_id`, None if none."""
    return await _scalar(conn, _PREV_AGG_SQL, (market.number, symbol, agg_id))


async def agg_stored_after(
    conn: AsyncConnection, symbol: str, agg_id: int, market: Market
) -> int | None:
    """The lowest stored aggregate id of `symbol` above `agg_id`, None if none."""
    return await _scalar(conn, _AFTER_AGG_SQL, (market.number, symbol, agg_id))


async def _scalar(conn: AsyncConnection, sql: str, params: tuple[Any, ...]) -> int | None:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def agg_missing_in_range(
    conn: AsyncConnection, symbol: str, first: int, last: int, market: Market
) -> list[tuple[int, int]]:
    """The runs of aggregate ids in `first..last` not stored."""
    params = {"market": market.number, "symbol": symbol, "first": first, "last": last}
    cur = await conn.execute(_MISSING_AGG_SQL, params)
    return [(int(a), int(b)) for a, b in await cur.fetchall()]


async def record_agg_gap(
    conn: AsyncConnection, symbol: str, first: int, last: int, state: str, *, market: Market
) -> None:
    """Record (upsert) the gap `first..last` of `symbol`'s aggregate ids in `state`."""
    await conn.execute(_UPSERT_AGG_GAP_SQL, (market.number, symbol, first, last, state))


async def settle_agg_gaps(
    conn: AsyncConnection, symbol: str, lo: int, hi: int, market: Market
) -> int:
    """Mark `filled` the open aggregate gaps of `symbol` overlapping `lo..hi` whose ids are
    all stored now; return how many."""
    cur = await conn.execute(_OPEN_AGG_WITHIN_SQL, (market.number, symbol, lo, hi))
    settled = 0
    for first, last in await cur.fetchall():
        params = {"market": market.number, "symbol": symbol, "first": first, "last": last}
        done = await conn.execute(_SETTLE_AGG_SQL, params)
        settled += await done.fetchone() is not None
    return settled
