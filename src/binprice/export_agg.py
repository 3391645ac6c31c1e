"""`binprice export --kind aggTrades`: a window of aggregate trades as csv, ndjson, or Binance's
aggTrades archive CSV of the market (byte-compatible: the layout `import --kind aggTrades`
reads back).

``binance`` per market (docs/aggregate-trades.md):

- Spot: no header, ``a,price,qty,f,l,time,isBuyerMaker,isBestMatch``, ``True``/``False``,
  ``isBestMatch`` always ``True`` (not stored), ``time`` in ms before 2025-01-01 and in µs from
  then (binprice keeps ms, so a µs time ends in ``000``);
- USD-M and COIN-M: the header ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,
  transact_time,is_buyer_maker`` (Binance's files carry it from about 2022 on), ``true``/
  ``false``, times in ms.

Parquet and Binance's directory of daily zips are for trades only, for now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

import psycopg

from binprice.db.aggexport import (
    AGG_CSV_SELECT,
    AGG_EXPORT_COLUMNS,
    AGG_NDJSON_SELECT,
    AGG_ORDER,
    AGG_TABLE,
    FUTURES_BINANCE_HEADER,
    binance_agg_select,
)
from binprice.db.export import Progress, ProgressCounter, copy_out, window_params
from binprice.errors import UsageError
from binprice.export import Format
from binprice.markets import Market
from binprice.symbols import normalize_symbols

Connection = psycopg.Connection[Any]
#: `copy_out`'s table and order for aggregate trades.
_AGGREGATES = {"table": AGG_TABLE, "order": AGG_ORDER}

#: Binance's futures archive files carry a header row from about this day on (its
#: documentation is silent; files of 2021 are quoted without one, of 2022 with one).
FUTURES_HEADER_FROM = datetime(2022, 1, 1, tzinfo=UTC)


def write_aggs(
    conn: Connection,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    fmt: Format,
    *,
    out: IO[bytes],
    progress: Progress | None = None,
    market: Market = Market.SPOT,
) -> int:
    """Write every aggregate trade of ``symbols`` of ``market`` in ``[start, end)`` to
    ``out``; return how many. ``binance`` takes exactly one symbol."""
    wanted = list(normalize_symbols(symbols))
    counter = ProgressCounter(progress)
    if fmt is Format.PARQUET:
        raise UsageError("--kind aggTrades exports csv, ndjson or binance; not parquet (yet)")
    if fmt is Format.BINANCE:
        if len(wanted) != 1:
            raise UsageError("the binance format holds one symbol per file: give one symbol")
        params = window_params(wanted[0], start, end, market)
        if market is not Market.SPOT and params["start"] >= FUTURES_HEADER_FROM:
            out.write(FUTURES_BINANCE_HEADER.encode() + b"\n")
        select = binance_agg_select(market)
        copy_out(conn, select, "(FORMAT csv)", params, out, counter=counter, **_AGGREGATES)
        return counter.finish()
    if fmt is Format.CSV:
        out.write(",".join(AGG_EXPORT_COLUMNS).encode() + b"\n")
    select, options = (
        (AGG_CSV_SELECT, "(FORMAT csv)")
        if fmt is Format.CSV
        else (AGG_NDJSON_SELECT, "(FORMAT text)")
    )
    with conn.transaction():  # one snapshot for all symbols
        for symbol in wanted:
            params = window_params(symbol, start, end, market)
            copy_out(conn, select, options, params, out, counter=counter, **_AGGREGATES)
    return counter.finish()
