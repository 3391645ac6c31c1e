"""`binprice status`: what is stored, per symbol, at a glance.

Everything comes from the per-minute rollup (`trade_minutes`, exact by triggers) and index
probes, never from a scan of `trades`:

- the symbols: a loose index scan of the rollup's primary key, plus symbols with open gaps;
- the first and last stored trade: the symbol's first and last rollup minute give the lowest
  and highest id (Binance ids grow with time), then one primary-key probe each, bounded to
  that minute so only its partition is read, gives the exact time;
- the count: the sum of the symbol's rollup minutes (exact: the triggers count every row that
  got in however it got in); it reads one rollup row per minute that had trades;
- open gaps: the partial index on open gaps;
- the size: `pg_database_size`, and the partitions of `trades` from the catalog; rows waiting in
  the DEFAULT partition are counted (it is normally empty).

History before a `db prune` cut is left out: with `--keep-rollup` its minutes stay in the
rollup, but its trades are gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from binprice.db.blockreads import compressed_catalog, time_of
from binprice.db.partitions import ROLLUP_SYMBOLS_CTE, list_partitions, pruned_before
from binprice.kinds import TradeKind
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols

__all__ = [
    "STATUS_SQL",
    "MonthStatus",
    "Status",
    "SymbolStatus",
    "database_status",
    "month_states",
    "status_symbols",
]

Connection = psycopg.Connection[Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Status reports trades: the gaps it counts are of trade ids, never aggregate ids.
_TRADES = TradeKind.TRADES.number

SYMBOLS_SQL = f"""
WITH RECURSIVE {ROLLUP_SYMBOLS_CTE}
SELECT symbol FROM rolled WHERE market = %(market)s
UNION
SELECT symbol FROM gaps WHERE market = %(market)s AND kind = {_TRADES} AND state = 'open'
ORDER BY 1
"""


def _edge(direction: str) -> str:
    """The first (ASC) or last (DESC) stored trade of r.symbol: its rollup minute, then that
    minute's lowest or highest id looked up by primary key within the minute."""
    column = "first_id" if direction == "ASC" else "last_id"
    return f"""
    SELECT m.{column} AS trade_id, t.timestamp FROM (
        SELECT minute, {column} FROM trade_minutes
        WHERE market = %(market)s AND symbol = r.symbol AND minute >= %(since)s
        ORDER BY minute {direction} LIMIT 1
    ) AS m
    LEFT JOIN LATERAL (
        SELECT timestamp FROM trades
        WHERE trades.market = %(market)s AND trades.symbol = r.symbol
          AND trades.trade_id = m.{column}
          AND trades.timestamp >= m.minute AND trades.timestamp < m.minute + interval '1 minute'
        LIMIT 1
    ) AS t ON true"""


STATUS_SQL = f"""
SELECT r.symbol, f.trade_id, f.timestamp, l.trade_id, l.timestamp,
       coalesce(c.trades, 0), g.open, coalesce(g.missing, 0)
FROM unnest(%(symbols)s::text[]) AS r(symbol)
LEFT JOIN LATERAL ({_edge("ASC")}) AS f ON true
LEFT JOIN LATERAL ({_edge("DESC")}) AS l ON true
CROSS JOIN LATERAL (
    SELECT sum(trades)::bigint AS trades FROM trade_minutes
    WHERE market = %(market)s AND symbol = r.symbol AND minute >= %(since)s
) AS c
CROSS JOIN LATERAL (
    SELECT count(*) AS open, sum(last_id - first_id + 1)::bigint AS missing FROM gaps
    WHERE gaps.market = %(market)s AND gaps.kind = {_TRADES} AND gaps.symbol = r.symbol
      AND gaps.state = 'open'
) AS g
ORDER BY r.symbol
"""
_SIZE_SQL = "SELECT pg_database_size(current_database()), statement_timestamp()"
#: Rows in the DEFAULT partition are counted up to this many (it is normally empty; a big
#: import into months without a partition could fill it, and status must stay quick).
DEFAULT_COUNT_LIMIT = 1_000_000
_DEFAULT_ROWS_SQL = "SELECT count(*) FROM (SELECT FROM trades_default LIMIT %s) AS waiting"


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    """One symbol's stored trades; ids and times are None when none is stored (open gaps
    only, or everything pruned)."""

    symbol: str
    first_id: int | None
    first_at: datetime | None
    last_id: int | None
    last_at: datetime | None
    #: Exact, from the rollup.
    trades: int
    open_gaps: int
    #: Trade ids inside the open gaps (still to be fetched).
    open_gap_ids: int
    #: How old the last stored trade was when the status was taken.
    last_trade_age: timedelta | None


@dataclass(frozen=True, slots=True)
class MonthStatus:
    """One UTC month of stored trades: as rows of `trades`, or compressed into `trade_blocks`
    by `db compress` (rows written into it since then are counted with it), or partly: the
    live month with its closed days in blocks and its last days as rows."""

    month: datetime
    compressed: bool
    #: Exact, from the rollup.
    trades: int
    #: The month's row partition and, compressed, its blocks (heap, TOAST, indexes).
    bytes: int
    #: Compressed, and its row partition holds rows (the live month's last days, late rows).
    rows_too: bool = False

    @property
    def storage(self) -> str:
        if self.compressed:
            return "partly" if self.rows_too else "compressed"
        return "rows"

    @property
    def bytes_per_trade(self) -> float | None:
        return self.bytes / self.trades if self.trades else None


@dataclass(frozen=True, slots=True)
class Status:
    """Coverage of the whole database, as of `checked_at` (the database's clock)."""

    symbols: tuple[SymbolStatus, ...]
    checked_at: datetime
    database_bytes: int
    #: Size of `trades` (all partitions, indexes included) and how many monthly partitions.
    trades_bytes: int
    partitions: int
    #: Rows waiting in the DEFAULT partition for their month's partition (counted up to
    #: DEFAULT_COUNT_LIMIT).
    default_rows: int
    #: Where `db prune` cut the history off, if it ever did.
    pruned_before: datetime | None
    #: Per month with trades, oldest first: rows or compressed, trades, bytes.
    months: tuple[MonthStatus, ...] = ()

    @property
    def trades(self) -> int:
        return sum(s.trades for s in self.symbols)


def status_symbols(
    conn: Connection, symbols: Iterable[str] = (), market: Market = DEFAULT_MARKET
) -> list[str]:
    """`symbols` normalised, or every symbol of `market` with stored trades or open gaps."""
    wanted = list(normalize_symbols(list(symbols)))
    if wanted:
        return wanted
    rows = conn.execute(SYMBOLS_SQL, {"market": market.number}).fetchall()
    return [str(row[0]) for row in rows]


def database_status(
    conn: Connection, symbols: Iterable[str] = (), *, market: Market = DEFAULT_MARKET
) -> Status:
    """Per symbol of `market` (default: every symbol with trades or open gaps) the first and
    last stored trade, the stored count, open gaps and the last trade's age; and the
    database's size."""
    wanted = status_symbols(conn, symbols, market)
    cut = pruned_before(conn)
    size, checked_at = conn.execute(_SIZE_SQL).fetchone()  # type: ignore[misc]
    checked_at = checked_at.astimezone(UTC)
    params = {"symbols": wanted, "since": cut or _EPOCH, "market": market.number}
    rows = conn.execute(STATUS_SQL, params).fetchall()
    if compressed_catalog(conn, market):
        rows = [_times_from_blocks(conn, row, cut or _EPOCH, market) for row in rows]
    partitions = list_partitions(conn)
    waiting = conn.execute(_DEFAULT_ROWS_SQL, (DEFAULT_COUNT_LIMIT,)).fetchone()
    return Status(
        symbols=tuple(_symbol(row, checked_at) for row in rows),
        checked_at=checked_at,
        database_bytes=int(size),
        trades_bytes=sum(p.bytes for p in partitions),
        partitions=sum(1 for p in partitions if not p.is_default),
        default_rows=int(waiting[0]) if waiting else 0,
        pruned_before=cut,
        months=tuple(month_states(conn, cut or _EPOCH)),
    )


#: A symbol's first (ASC) or last (DESC) rollup minute.
_EDGE_MINUTE_SQL = """
SELECT minute FROM trade_minutes
WHERE market = %(market)s AND symbol = %(symbol)s AND minute >= %(since)s
ORDER BY minute {direction} LIMIT 1
"""
FIRST_MINUTE_SQL = _EDGE_MINUTE_SQL.format(direction="ASC")
LAST_MINUTE_SQL = _EDGE_MINUTE_SQL.format(direction="DESC")


def _times_from_blocks(
    conn: Connection, row: tuple[Any, ...], since: datetime, market: Market
) -> tuple[Any, ...]:
    """The first and last trade's times where those trades are in blocks, not rows."""
    symbol, first_id, first_at, last_id, last_at, *rest = row
    params = {"symbol": symbol, "since": since, "market": market.number}
    if first_id is not None and first_at is None:
        minute = conn.execute(FIRST_MINUTE_SQL, params).fetchone()
        first_at = minute and time_of(conn, symbol, first_id, minute[0], market)
    if last_id is not None and last_at is None:
        minute = conn.execute(LAST_MINUTE_SQL, params).fetchone()
        last_at = minute and time_of(conn, symbol, last_id, minute[0], market)
    return (symbol, first_id, first_at, last_id, last_at, *rest)


#: Trades per UTC month from the rollup (one pass over its rows since `since`).
_MONTH_TRADES_SQL = """
SELECT date_trunc('month', minute, 'UTC'), sum(trades)::bigint FROM trade_minutes
WHERE minute >= %s GROUP BY 1 ORDER BY 1"""
_COMPRESSED_SQL = """
SELECT month, coalesce(pg_total_relation_size(
    to_regclass('trade_blocks_' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM'))), 0)
FROM compressed_months"""


def month_states(conn: Connection, since: datetime = _EPOCH) -> list[MonthStatus]:
    """Every month with trades since `since`, oldest first: stored as rows or compressed, its
    trades (from the rollup) and bytes (its row partition, plus its blocks if compressed)."""
    trades = {m.astimezone(UTC): int(n) for m, n in conn.execute(_MONTH_TRADES_SQL, (since,))}
    blocks = {m.astimezone(UTC): int(b) for m, b in conn.execute(_COMPRESSED_SQL)}
    partitions = {p.start: p for p in list_partitions(conn) if p.start is not None}
    rows = {month: p.bytes for month, p in partitions.items()}
    # One probe per compressed month's row partition: rows left in it?
    holding = {m for m in blocks if m in partitions and _holds_rows(conn, partitions[m].name)}
    return [
        MonthStatus(
            month,
            month in blocks,
            count,
            rows.get(month, 0) + blocks.get(month, 0),
            rows_too=month in holding,
        )
        for month, count in sorted(trades.items())
    ]


def _holds_rows(conn: Connection, table: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(table))
    return bool(conn.execute(query).fetchone()[0])  # type: ignore[index]


def _symbol(row: tuple[Any, ...], checked_at: datetime) -> SymbolStatus:
    symbol, first_id, first_at, last_id, last_at, trades, open_gaps, missing = row
    first_at = first_at and first_at.astimezone(UTC)
    last_at = last_at and last_at.astimezone(UTC)
    return SymbolStatus(
        symbol=str(symbol),
        first_id=first_id,
        first_at=first_at,
        last_id=last_id,
        last_at=last_at,
        trades=int(trades),
        open_gaps=int(open_gaps),
        open_gap_ids=int(missing),
        last_trade_age=None if last_at is None else checked_at - last_at,
    )
