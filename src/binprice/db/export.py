"""A window of one symbol's trades streamed out with ``COPY (SELECT …) TO STDOUT``, counted.

Shared by the export writers (`binprice.export` for CSV and NDJSON, `binprice.export_binance`
for Binance's archive layout): the window's query parameters, the statement around a writer's
``SELECT`` list, and the row count reported to a progress callback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

import psycopg

from binprice.db.candles import as_utc
from binprice.errors import UsageError
from binprice.timespec import format_timestamp

Connection = psycopg.Connection[Any]
#: Called with the number of rows written so far.
Progress = Callable[[int], None]

#: Progress is reported about this often (rows), so a callback costs nothing per row.
PROGRESS_EVERY = 10_000

WINDOW_WHERE = "symbol = %(symbol)s AND timestamp >= %(start)s AND timestamp < %(end)s"
ORDER = "ORDER BY timestamp, trade_id"


def window_params(symbol: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Query parameters of one symbol's window (naive times are UTC)."""
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        window = f"start {format_timestamp(start)} is not before end {format_timestamp(end)}"
        raise UsageError(f"empty window: {window}")
    return {"symbol": symbol, "start": start, "end": end}


def copy_out(
    conn: Connection, select: str, options: str, params: dict[str, Any], out: IO[bytes],
    counter: ProgressCounter,
) -> None:  # fmt: skip
    """Stream ``COPY (select FROM trades, one symbol's window) TO STDOUT options`` to ``out``."""
    # COPY takes no bind parameters: psycopg merges them into the statement client-side.
    statement = f"COPY ({select} FROM trades WHERE {WINDOW_WHERE} {ORDER}) TO STDOUT {options}"
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
