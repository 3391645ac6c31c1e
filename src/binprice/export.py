"""Every trade of a window, streamed out in constant memory: CSV, NDJSON, Parquet or Binance's CSV.

Writers take a binary stream and report progress through a callback (rows written so far);
they never print. CSV, NDJSON and Binance's layout are formatted by PostgreSQL itself and
streamed with ``COPY (SELECT …) TO STDOUT``: no Python object per trade, so the rate is bounded
by the server, not the interpreter. Parquet (the optional ``binprice[parquet]`` extra, pyarrow)
reads a server-side cursor in batches. Rows come per symbol in the order the symbols were given,
then in ``(timestamp, trade_id)`` order — the order of the per-symbol time index that answers
the window, and trade-id order as Binance ids grow with time.

Formats:

- ``csv``: a header row, then ``symbol,trade_id,price,quantity,timestamp,is_buyer_maker``;
  decimals exactly as stored, timestamps ISO 8601 UTC with milliseconds and ``Z``, booleans
  ``true``/``false`` (the conventions of ``--json``/``--csv`` elsewhere).
- ``ndjson``: one JSON object per line with the same keys; decimals are strings (exact).
- ``parquet``: the same columns; price and quantity as ``decimal128`` with the scale of the
  most precise value in the window, so every value is exact (see :func:`decimal_types`).
- ``binance``: Binance's public-archive trades CSV (see :mod:`binprice.export_binance`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

import psycopg

from binprice.compressed.texts import csv_format, ndjson_format
from binprice.db.blockreads import compressed_catalog, window_trades
from binprice.db.candles import as_utc
from binprice.db.export import (
    BATCH_ROWS,
    CSV_SELECT,
    NDJSON_SELECT,
    PARQUET_COLUMNS,
    Progress,
    ProgressCounter,
    copy_out,
    decimal_extents,
    trade_batches,
    window_params,
)
from binprice.errors import ExportError, MissingExtraError, UsageError
from binprice.export_binance import write_binance_csv
from binprice.export_blocks import (
    csv_lines,
    ndjson_lines,
    window_extents,
    window_texts,
    write_texts,
)
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols

__all__ = [
    "COLUMNS",
    "Format",
    "Trade",
    "decimal_types",
    "trades",
    "write_trades",
]

Connection = psycopg.Connection[Any]

COLUMNS = ("symbol", "trade_id", "price", "quantity", "timestamp", "is_buyer_maker")
#: decimal128 holds at most 38 digits.
MAX_DECIMAL_PRECISION = 38


class Format(enum.StrEnum):
    """Export formats (the values of ``--format``)."""

    CSV = "csv"
    NDJSON = "ndjson"
    PARQUET = "parquet"
    BINANCE = "binance"


@dataclass(frozen=True, slots=True)
class Trade:
    """One stored trade."""

    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    timestamp: datetime
    is_buyer_maker: bool


_COPY_OPTIONS = {Format.CSV: "(FORMAT csv)", Format.NDJSON: "(FORMAT text)"}
_SELECTS = {Format.CSV: CSV_SELECT, Format.NDJSON: NDJSON_SELECT}


def parse_format(name: str) -> Format:
    """The format called ``name``; raise :class:`UsageError` otherwise."""
    try:
        return Format(name.strip().lower())
    except ValueError:
        names = ", ".join(f.value for f in Format)
        raise UsageError(f"invalid format {name!r}: expected one of {names}") from None


def write_trades(
    conn: Connection,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    fmt: Format | str,
    *,
    out: IO[bytes],
    progress: Progress | None = None,
    market: Market = DEFAULT_MARKET,
) -> int:
    """Write every trade of ``symbols`` of ``market`` in ``[start, end)`` to ``out``; return
    the row count.

    ``binance`` takes exactly one symbol (the layout has no symbol column).
    """
    chosen = parse_format(fmt) if isinstance(fmt, str) else fmt
    wanted = list(normalize_symbols(symbols))
    counter = ProgressCounter(progress)
    if chosen is Format.BINANCE:
        if len(wanted) != 1:
            raise UsageError("the binance format holds one symbol per file: give a directory")
        return write_binance_csv(conn, wanted[0], start, end, out, progress=progress, market=market)
    if chosen is Format.PARQUET:
        _write_parquet(conn, wanted, (start, end), out, counter=counter, market=market)
        return counter.finish()
    if chosen is Format.CSV:
        out.write(",".join(COLUMNS).encode() + b"\n")
    # One snapshot for all symbols, so an ingest running meanwhile cannot skew them.
    with conn.transaction():
        compressed = compressed_catalog(conn, market).overlaps(as_utc(start), as_utc(end))
        block_lines = csv_format() if chosen is Format.CSV else ndjson_format()
        for symbol in wanted:
            params = window_params(symbol, start, end, market)
            if compressed:
                write_texts(
                    conn,
                    symbol,
                    params["start"],
                    params["end"],
                    lines=csv_lines if chosen is Format.CSV else ndjson_lines,
                    blocks=block_lines,
                    rows=(_SELECTS[chosen], _COPY_OPTIONS[chosen]),
                    out=out,
                    counter=counter,
                    market=market,
                )
            else:
                copy_out(
                    conn, _SELECTS[chosen], _COPY_OPTIONS[chosen], params, out, counter=counter
                )
    return counter.finish()


def trades(
    conn: Connection, symbol: str, start: datetime, end: datetime, market: Market = DEFAULT_MARKET
) -> Iterator[Trade]:
    """Every trade of ``symbol`` of ``market`` in ``[start, end)`` in time order, read in
    batches."""
    (wanted,) = normalize_symbols([symbol])
    params = window_params(wanted, start, end, market)
    if compressed_catalog(conn, market).overlaps(params["start"], params["end"]):
        for trade in window_trades(conn, wanted, params["start"], params["end"], market):
            yield Trade(
                wanted,
                trade.trade_id,
                trade.price,
                trade.quantity,
                trade.timestamp,
                trade.is_buyer_maker,
            )
        return
    for batch in trade_batches(conn, wanted, start, end, ", ".join(COLUMNS), market=market):
        for symbol_, trade_id, price, quantity, timestamp, is_buyer_maker in batch:
            # psycopg returns timestamptz in the session's zone; answers are UTC.
            yield Trade(symbol_, trade_id, price, quantity, as_utc(timestamp), is_buyer_maker)


def decimal_types(
    conn: Connection,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    market: Market = DEFAULT_MARKET,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(precision, scale) of the exact decimal128 types for price and quantity in the window.

    ``numeric`` keeps each value's own scale (``70000.00`` next to ``0.00000001``); a Parquet
    column has one. The scale is the largest in the window and the precision the most integer
    digits plus that scale, found by one index-only pass (price and quantity are included in
    the per-symbol time index), so no value is rounded and none overflows.
    """
    found = [(0, 0, 0, 0)]
    compressed = compressed_catalog(conn, market).overlaps(as_utc(start), as_utc(end))
    extents = window_extents if compressed else decimal_extents
    for symbol in symbols:
        row = extents(conn, symbol, as_utc(start), as_utc(end), market)
        if row is not None:
            found.append(row)
    types = []
    for column, (scale_at, digits_at) in (("price", (0, 1)), ("quantity", (2, 3))):
        scale = max(row[scale_at] for row in found)
        precision = max(row[digits_at] for row in found) + scale
        if precision > MAX_DECIMAL_PRECISION:
            raise ExportError(
                f"{column} needs {precision} digits, more than Parquet's decimal128 holds"
            )
        types.append((max(precision, 1), scale))
    return types[0], types[1]


def _write_parquet(
    conn: Connection,
    symbols: Sequence[str],
    window: tuple[datetime, datetime],
    out: IO[bytes],
    *,
    counter: ProgressCounter,
    market: Market,
) -> None:
    start, end = window
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("Parquet", ("pyarrow",)) from None
    price_type, quantity_type = decimal_types(conn, symbols, start, end, market)
    schema = _schema(pa, price_type, quantity_type)
    compressed = compressed_catalog(conn, market).overlaps(as_utc(start), as_utc(end))
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for symbol in symbols:
            batches = _parquet_batches(conn, symbol, (start, end), compressed, market)
            for batch in batches:
                columns = [pa.array(values) for values in zip(*batch, strict=True)]
                # Text to decimal128 in Arrow (it refuses any rounding), epoch ms to timestamps:
                # no Decimal or datetime object per value, several times faster.
                arrays = [
                    column.cast(field.type) for column, field in zip(columns, schema, strict=True)
                ]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                counter.add(len(batch))


def _parquet_batches(
    conn: Connection,
    symbol: str,
    window: tuple[datetime, datetime],
    compressed: bool,
    market: Market,
) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of PARQUET_COLUMNS: from the rows, or from rows and blocks decoded as text."""
    start, end = window
    if not compressed:
        yield from trade_batches(conn, symbol, start, end, PARQUET_COLUMNS, market=market)
        return
    params = window_params(symbol, start, end, market)
    batch: list[tuple[Any, ...]] = []
    with conn.transaction():
        for chunk in window_texts(conn, symbol, params["start"], params["end"], market):
            batch.extend((symbol, i, p, q, ms, m) for i, p, q, ms, m in chunk)
            # Batches as the rows' cursor gives them, so the file is the same byte for byte.
            while len(batch) >= BATCH_ROWS:
                yield batch[:BATCH_ROWS]
                batch = batch[BATCH_ROWS:]
    if batch:
        yield batch


def _schema(pa: Any, price: tuple[int, int], quantity: tuple[int, int]) -> Any:
    return pa.schema(
        [
            ("symbol", pa.string()),
            ("trade_id", pa.int64()),
            ("price", pa.decimal128(*price)),
            ("quantity", pa.decimal128(*quantity)),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("is_buyer_maker", pa.bool_()),
        ]
    )
