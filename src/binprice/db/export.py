"""A window of one symbol's trades read out: ``COPY (SELECT …) TO STDOUT``, or batches.

Every statement the export writers run (`binprice.export` for CSV, NDJSON and Parquet,
`binprice.export_binance` for Binance's archive layout): each format's ``SELECT`` list, the
window's query parameters, the COPY around a list, the server-side cursor Parquet and
`store.trades` read in batches, and the row count reported to a progress callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any

import psycopg

from binprice.db.candles import as_utc
from binprice.errors import UsageError
from binprice.markets import DEFAULT_MARKET, Market
from binprice.timespec import format_timestamp

Connection = psycopg.Connection[Any]
#: Called with the number of rows written so far.
Progress = Callable[[int], None]

#: Progress is reported about this often (rows), so a callback costs nothing per row.
PROGRESS_EVERY = 10_000

WINDOW_WHERE = (
    "market = %(market)s AND symbol = %(symbol)s AND timestamp >= %(start)s AND timestamp < %(end)s"
)
ORDER = "ORDER BY timestamp, trade_id"

#: Rows per server-side cursor fetch and per Parquet row group slice: big enough that the round
#: trips vanish, small enough that memory stays a few MB whatever the window.
BATCH_ROWS = 50_000
#: ISO 8601 UTC with milliseconds and Z, as binprice prints timestamps everywhere.
ISO_MS = """to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""

CSV_SELECT = f"SELECT symbol, trade_id, price, quantity, {ISO_MS}, is_buyer_maker::text"
# Built by the server: symbols are upper-case letters and digits (checked by the table), numeric
# text never has an exponent, so nothing needs escaping; COPY's text format would escape a
# backslash, and there is none.
_NDJSON_OBJECT = (
    '{"symbol":%%s,"trade_id":%%s,"price":"%%s","quantity":"%%s","timestamp":"%%s",'
    '"is_buyer_maker":%%s}'
)
NDJSON_SELECT = (
    f"SELECT format('{_NDJSON_OBJECT}', to_json(symbol), trade_id, price, quantity, {ISO_MS}, "
    "is_buyer_maker::text)"
)
#: A row as the block exports' text fields: epoch ms, id, decimals as stored, side.
ROW_TEXT_COLUMNS = (
    "(extract(epoch FROM timestamp) * 1000)::bigint, trade_id, price::text, quantity::text, "
    "is_buyer_maker"
)
#: Parquet's columns as text and epoch milliseconds, cast in Arrow (see `binprice.export`).
PARQUET_COLUMNS = (
    "symbol, trade_id, price::text, quantity::text, "
    "(extract(epoch FROM timestamp) * 1000)::bigint, is_buyer_maker"
)


def window_params(
    symbol: str, start: datetime, end: datetime, market: Market = DEFAULT_MARKET
) -> dict[str, Any]:
    """Query parameters of one symbol's window in `market` (naive times are UTC)."""
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        window = f"start {format_timestamp(start)} is not before end {format_timestamp(end)}"
        raise UsageError(f"empty window: {window}")
    return {"symbol": symbol, "start": start, "end": end, "market": market.number}


def copy_out(
    conn: Connection,
    select: str,
    options: str,
    params: dict[str, Any],
    out: IO[bytes],
    *,
    counter: ProgressCounter,
    table: str = "trades",
    order: str = ORDER,
) -> None:
    """Stream ``COPY (select FROM table, one symbol's window) TO STDOUT options`` to ``out``
    (`table` `agg_trades` with its `order` for aggregate trades)."""
    # COPY takes no bind parameters: psycopg merges them into the statement client-side.
    statement = f"COPY ({select} FROM {table} WHERE {WINDOW_WHERE} {order}) TO STDOUT {options}"
    with conn.cursor() as cur, cur.copy(statement, params) as copy:
        for chunk in copy:
            out.write(chunk)
            # libpq hands COPY data over a row at a time; no field holds a newline.
            counter.add(bytes(chunk).count(b"\n"))


class ProgressCounter:
    """Rows written so far, reported to the progress callback every PROGRESS_EVERY rows."""

    def __init__(self, progress: Progress | None) -> None:
        self.rows = 0
        self._reported = 0
        self._progress = progress

    def add(self, rows: int) -> None:
        self.rows += rows
        if self._progress is not None and self.rows - self._reported >= PROGRESS_EVERY:
            self._reported = self.rows
            self._progress(self.rows)

    def finish(self) -> int:
        if self._progress is not None and self.rows != self._reported:
            self._progress(self.rows)
        return self.rows


def binance_select(microseconds_from: datetime, quote_decimals: int) -> str:
    """The SELECT list of Binance's archive CSV: quote quantity rounded to `quote_decimals`,
    time in microseconds from `microseconds_from` on (milliseconds before), flags as text."""
    return f"""SELECT trade_id, price, quantity, round(price * quantity, {quote_decimals}),
       CASE WHEN timestamp >= '{microseconds_from.isoformat()}'
            THEN (extract(epoch FROM timestamp) * 1000000)::bigint
            ELSE (extract(epoch FROM timestamp) * 1000)::bigint END,
       CASE WHEN is_buyer_maker THEN 'True' ELSE 'False' END, 'True'"""


def decimal_extents(
    conn: Connection, symbol: str, start: datetime, end: datetime, market: Market = DEFAULT_MARKET
) -> tuple[int, int, int, int] | None:
    """Largest scale and most integer digits of price, then of quantity, in one symbol's window
    (one index-only pass: the time index includes both columns)."""
    row: tuple[int, int, int, int] | None = conn.execute(
        "SELECT coalesce(max(scale(price)), 0), coalesce(max(length(trunc(abs(price))::text)),"
        " 1), coalesce(max(scale(quantity)), 0), coalesce(max(length(trunc(abs(quantity))"
        f"::text)), 1) FROM trades WHERE {WINDOW_WHERE}",
        window_params(symbol, start, end, market),
    ).fetchone()
    return row


def trade_batches(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    columns: str,
    *,
    market: Market = DEFAULT_MARKET,
) -> Iterator[list[tuple[Any, ...]]]:
    """`columns` of one symbol's window in time order, BATCH_ROWS rows at a time."""
    # A named (server-side) cursor holds the result on the server; it needs a transaction.
    with conn.transaction():
        yield from window_rows(
            conn, symbol, start, end, columns, cursor="binprice_export", market=market
        )


def window_rows(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    columns: str,
    *,
    cursor: str,
    market: Market = DEFAULT_MARKET,
) -> Iterator[list[tuple[Any, ...]]]:
    """`columns` of one symbol's window in time order, BATCH_ROWS rows at a time, through the
    server-side cursor named `cursor`, in the caller's transaction."""
    params = window_params(symbol, start, end, market)
    query = f"SELECT {columns} FROM trades WHERE {WINDOW_WHERE} {ORDER}"
    with conn.cursor(name=cursor) as cur:
        cur.itersize = BATCH_ROWS
        cur.execute(query, params)
        while batch := cur.fetchmany(BATCH_ROWS):
            yield batch
