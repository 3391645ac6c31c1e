"""The questions answered from aggregate trades (`agg_trades`, migration 0013): latest, at,
range and candles, with `kind="aggTrades"` on the `Store` (docs/aggregate-trades.md).

`agg_trades` is one table keyed by `(market, symbol, agg_id)` with an index on `(market,
symbol, "timestamp")`, so every question is one statement probing an index per symbol (a
``LATERAL`` join over the requested symbols, as `db/queries.py` does for trades):

- ``latest`` walks the primary key backwards: the highest aggregate id is the last aggregate;
- ``at`` reads at most one aggregate on each side of the time through the time index (ties of
  one millisecond broken by the aggregate id, as trades by the trade id);
- ``range`` and ``candles`` aggregate the window's index range on the server (``date_bin``
  ``GROUP BY`` for candles); open and close are the prices of the lowest and highest
  aggregate id in the window or bucket (ids grow with time).

An aggregate merges the fills of one taker order at one price, so volume, quote volume, high,
low, open and close are the same as those of its trades; ``trades`` counts the trades merged
(``last_trade_id - first_trade_id + 1`` summed), so a candle of aggregates equals the candle of
the same trades.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from binprice.db.candles import Candle, Interval, _candle, as_utc, parse_interval
from binprice.db.queries import VWAP_CONTEXT, Range
from binprice.errors import UsageError
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols
from binprice.timespec import format_timestamp

__all__ = [
    "AggAt",
    "AggTrade",
    "agg_at",
    "agg_candles",
    "agg_counts",
    "agg_range",
    "agg_symbols",
    "latest_aggs",
]

Connection = psycopg.Connection[Any]

_COLUMNS = 'agg_id, price, quantity, first_trade_id, last_trade_id, "timestamp", is_buyer_maker'
_SYMBOLS = "unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)"
_OF_SYMBOL = "market = %(market)s AND symbol = r.symbol"
_IN_WINDOW = f'{_OF_SYMBOL} AND "timestamp" >= %(start)s AND "timestamp" < %(end)s'

AGG_SYMBOLS_SQL = """
WITH RECURSIVE known(symbol) AS (
    (SELECT symbol FROM agg_trades WHERE market = %(market)s ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT a.symbol FROM agg_trades AS a WHERE a.market = %(market)s
            AND a.symbol > k.symbol ORDER BY a.symbol LIMIT 1)
    FROM known AS k
    WHERE k.symbol IS NOT NULL
)
SELECT symbol FROM known WHERE symbol IS NOT NULL
"""
LATEST_AGG_SQL = f"""
SELECT r.symbol, t.* FROM {_SYMBOLS}
CROSS JOIN LATERAL (
    SELECT {_COLUMNS} FROM agg_trades WHERE {_OF_SYMBOL} ORDER BY agg_id DESC LIMIT 1
) AS t
ORDER BY r.position
"""
#: The last aggregate at or before the time (side 0) and the first after it (side 1).
AT_AGG_SQL = f"""
SELECT r.symbol, t.* FROM {_SYMBOLS}
CROSS JOIN LATERAL (
    (SELECT {_COLUMNS}, 0 AS side FROM agg_trades
     WHERE {_OF_SYMBOL} AND "timestamp" <= %(ts)s
     ORDER BY "timestamp" DESC, agg_id DESC LIMIT 1)
    UNION ALL
    (SELECT {_COLUMNS}, 1 AS side FROM agg_trades
     WHERE {_OF_SYMBOL} AND "timestamp" > %(ts)s AND NOT %(before)s
     ORDER BY "timestamp", agg_id LIMIT 1)
) AS t
ORDER BY r.position, t.side
"""
RANGE_AGG_SQL = f"""
SELECT r.symbol, s.trades, s.volume, s.notional, s.high, s.low,
       (SELECT price FROM agg_trades WHERE {_IN_WINDOW} ORDER BY "timestamp", agg_id LIMIT 1),
       (SELECT price FROM agg_trades WHERE {_IN_WINDOW}
        ORDER BY "timestamp" DESC, agg_id DESC LIMIT 1),
       (SELECT min("timestamp") FROM agg_trades WHERE {_IN_WINDOW} AND price = s.high),
       (SELECT min("timestamp") FROM agg_trades WHERE {_IN_WINDOW} AND price = s.low)
FROM {_SYMBOLS}
CROSS JOIN LATERAL (
    SELECT sum(last_trade_id - first_trade_id + 1)::bigint AS trades, sum(quantity) AS volume,
           sum(price * quantity) AS notional, max(price) AS high, min(price) AS low
    FROM agg_trades WHERE {_IN_WINDOW}
) AS s
WHERE s.trades IS NOT NULL
ORDER BY r.position
"""


#: Aggregates per symbol in a window (an export's plan).
COUNT_AGG_SQL = f"""
SELECT r.symbol, c.n FROM {_SYMBOLS}
CROSS JOIN LATERAL (SELECT count(*) AS n FROM agg_trades WHERE {_IN_WINDOW}) AS c
WHERE c.n > 0
ORDER BY r.position
"""


def _candles_sql(bucket: str) -> str:
    """Candles of aggregates; ``bucket`` maps ``"timestamp"`` to its candle's open time."""
    return f"""
SELECT r.symbol, c.* FROM {_SYMBOLS}
CROSS JOIN LATERAL (
    SELECT {bucket} AS bucket, sum(last_trade_id - first_trade_id + 1)::bigint AS trades,
           sum(quantity) AS volume, sum(price * quantity) AS notional, max(price) AS high,
           min(price) AS low, (min(ARRAY[agg_id::numeric, price]))[2] AS open,
           (max(ARRAY[agg_id::numeric, price]))[2] AS close
    FROM agg_trades WHERE {_IN_WINDOW}
    GROUP BY 1
) AS c
ORDER BY r.position, c.bucket
"""


#: The same alignment as the trades' candles (`db.candles`): fixed widths by ``date_bin`` from
#: the interval's origin, months in UTC.
FIXED_AGG_CANDLES_SQL = _candles_sql('date_bin(%(width)s::interval, "timestamp", %(origin)s)')
MONTHLY_AGG_CANDLES_SQL = _candles_sql("date_trunc('month', \"timestamp\", 'UTC')")


@dataclass(frozen=True, slots=True)
class AggTrade:
    """One aggregate trade: the fills of one taker order at one price (Binance's `a, p, q, f,
    l, T, m`). `quantity` is the sum of its trades' quantities; `first_trade_id` ..
    `last_trade_id` the trades merged; `time` aware UTC, to the millisecond."""

    symbol: str
    agg_id: int
    price: Decimal
    quantity: Decimal
    first_trade_id: int
    last_trade_id: int
    time: datetime
    is_buyer_maker: bool


@dataclass(frozen=True, slots=True)
class AggAt(AggTrade):
    """The aggregate chosen for a requested time; ``offset_ms`` = its time - requested."""

    requested: datetime
    offset_ms: int


def agg_symbols(conn: Connection, market: Market = DEFAULT_MARKET) -> list[str]:
    """Every symbol of `market` with an aggregate trade, alphabetically (a loose index scan)."""
    return [row[0] for row in conn.execute(AGG_SYMBOLS_SQL, {"market": market.number})]


def latest_aggs(
    conn: Connection, symbols: Iterable[str] = (), *, market: Market = DEFAULT_MARKET
) -> list[AggTrade]:
    """The last aggregate trade of each symbol (every symbol with aggregates if none given)."""
    params = {"symbols": _resolve(conn, symbols, market), "market": market.number}
    return [_agg(row) for row in conn.execute(LATEST_AGG_SQL, params)]


def agg_at(
    conn: Connection,
    ts: datetime,
    symbols: Iterable[str] = (),
    *,
    before: bool = False,
    within: timedelta | None = None,
    market: Market = DEFAULT_MARKET,
) -> list[AggAt]:
    """Per symbol the aggregate nearest to `ts` (a tie goes to the earlier one); `before`:
    the last at or before it; `within` leaves out aggregates farther away."""
    requested = as_utc(ts)
    wanted = _resolve(conn, symbols, market)
    params = {"symbols": wanted, "market": market.number, "ts": requested, "before": before}
    sides: dict[str, list[AggTrade]] = {}
    for row in conn.execute(AT_AGG_SQL, params):
        sides.setdefault(row[0], []).append(_agg(row[:8]))
    found = []
    for symbol in wanted:
        # min() keeps the first of equals, and the earlier side comes first: the tie rule.
        candidates = sides.get(symbol, [])
        if not candidates:
            continue
        best = min(candidates, key=lambda agg: abs(agg.time - requested))
        if within is not None and abs(best.time - requested) > within:
            continue
        offset = (best.time - requested) // timedelta(milliseconds=1)
        found.append(
            AggAt(
                best.symbol,
                best.agg_id,
                best.price,
                best.quantity,
                best.first_trade_id,
                best.last_trade_id,
                best.time,
                best.is_buyer_maker,
                requested=requested,
                offset_ms=offset,
            )
        )
    return found


def agg_range(
    conn: Connection,
    start: datetime,
    end: datetime,
    symbols: Iterable[str] = (),
    *,
    market: Market = DEFAULT_MARKET,
) -> list[Range]:
    """The window summary of each symbol's aggregates in ``[start, end)``; ``trades`` counts
    the trades the aggregates merge."""
    start, end = _window(start, end)
    params = {
        "symbols": _resolve(conn, symbols, market),
        "market": market.number,
        "start": start,
        "end": end,
    }
    found = []
    for row in conn.execute(RANGE_AGG_SQL, params):
        symbol, trades, volume, notional, high, low, open_, close, high_at, low_at = row
        found.append(
            Range(
                symbol=symbol,
                start=start,
                end=end,
                open=open_,
                high=high,
                low=low,
                close=close,
                high_at=high_at.astimezone(UTC),
                low_at=low_at.astimezone(UTC),
                trades=trades,
                volume=volume,
                vwap=VWAP_CONTEXT.divide(notional, volume),
            )
        )
    return found


def agg_counts(
    conn: Connection,
    start: datetime,
    end: datetime,
    symbols: Iterable[str],
    *,
    market: Market = DEFAULT_MARKET,
) -> dict[str, int]:
    """How many aggregate trades each symbol has in ``[start, end)``, those with any, in
    the order given."""
    start, end = _window(start, end)
    params = {
        "symbols": list(normalize_symbols(symbols)),
        "market": market.number,
        "start": start,
        "end": end,
    }
    return {symbol: int(n) for symbol, n in conn.execute(COUNT_AGG_SQL, params)}


def agg_candles(
    conn: Connection,
    symbols: Iterable[str],
    interval: str | Interval,
    start: datetime,
    end: datetime,
    *,
    market: Market = DEFAULT_MARKET,
) -> list[Candle]:
    """The candles of each symbol's aggregates in ``[start, end)``, by symbol then open time;
    the same fields as the trades' candles (``trades``: the trades merged)."""
    chosen = parse_interval(interval)
    start, end = _window(start, end)
    params: dict[str, Any] = {
        "symbols": list(normalize_symbols(symbols)),
        "market": market.number,
        "start": start,
        "end": end,
    }
    sql = MONTHLY_AGG_CANDLES_SQL
    if chosen.width is not None:
        sql = FIXED_AGG_CANDLES_SQL
        params.update(width=chosen.width, origin=chosen.origin)
    return [_candle(row, chosen) for row in conn.execute(sql, params)]


#: `db prune`: aggregate trades before the cut (the table is not partitioned: a DELETE).
_COUNT_BEFORE_SQL = 'SELECT count(*) FROM agg_trades WHERE "timestamp" < %s'
_DELETE_BEFORE_SQL = 'DELETE FROM agg_trades WHERE "timestamp" < %s'


def count_aggs_before(conn: Connection, cut: datetime) -> int:
    """How many aggregate trades of every market are older than `cut`."""
    row = conn.execute(_COUNT_BEFORE_SQL, (cut,)).fetchone()
    return 0 if row is None else int(row[0])


def delete_aggs_before(conn: Connection, cut: datetime) -> int:
    """Delete the aggregate trades of every market older than `cut` (in the caller's
    transaction); return how many."""
    with conn.cursor() as cur:
        cur.execute(_DELETE_BEFORE_SQL, (cut,))
        return max(cur.rowcount, 0)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        window = f"start {format_timestamp(start)} is not before end {format_timestamp(end)}"
        raise UsageError(f"empty window: {window}")
    return start, end


def _resolve(conn: Connection, symbols: Iterable[str], market: Market) -> list[str]:
    return list(normalize_symbols(symbols)) or agg_symbols(conn, market)


def _agg(row: Sequence[Any]) -> AggTrade:
    symbol, agg_id, price, quantity, first, last, time, maker = row
    return AggTrade(symbol, agg_id, price, quantity, first, last, time.astimezone(UTC), maker)
