"""The one query `binprice watch` polls: each symbol's last price, reference price, rate and
sparkline in a single round trip."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from binprice.db.blockreads import compressed_catalog, window_list
from binprice.db.catalog import in_snapshot, snapshot
from binprice.db.queries import latest_prices, nearest_trade_sql, trades_around

Connection = psycopg.Connection[Any]
MILLISECOND = timedelta(milliseconds=1)

#: The price at the window's start: the last trade at or before it, else the first after it,
#: found as `at` finds them (through the rollup's per-minute id ranges, see `db.queries`).
_REFERENCE = nearest_trade_sql("%(reference)s::timestamptz", before=True)
_SINCE = nearest_trade_sql("%(reference)s::timestamptz", before=False, skip="ref.price IS NOT NULL")

#: One LATERAL lookup per part and symbol (the last trade by id, the price at the window's
#: start by time, the per-minute rollup for the sparkline); tests/test_watch_plans.py checks
#: the plan. The recent trades are counted through the seed index (timestamp DESC, symbol),
#: a few seconds of it, with the market checked on the rows found (OFFSET 0 keeps it out of
#: the scan): given `market = …` as a key condition, the planner would rather read the
#: primary key (market, symbol, …), which is every trade of the symbol's month.
SNAPSHOT_SQL = f"""
SELECT r.symbol, last.price, last.timestamp, coalesce(ref.price, since.price), rate.trades,
       spark.minutes, spark.closes
FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)
LEFT JOIN LATERAL (
    SELECT price, timestamp FROM trades WHERE trades.market = %(market)s
      AND trades.symbol = r.symbol
    ORDER BY trade_id DESC LIMIT 1
) AS last ON true
LEFT JOIN LATERAL ({_REFERENCE}) AS ref ON true
LEFT JOIN LATERAL ({_SINCE}) AS since ON true
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE w.market = %(market)s) AS trades FROM (
        SELECT market FROM trades
        WHERE trades.symbol = r.symbol AND trades.timestamp > %(rate_since)s
          AND trades.timestamp <= %(now)s
        OFFSET 0
    ) AS w
) AS rate
CROSS JOIN LATERAL (
    SELECT array_agg(minute ORDER BY minute) AS minutes, array_agg(close ORDER BY minute) AS closes
    FROM trade_minutes
    WHERE trade_minutes.market = %(market)s AND trade_minutes.symbol = r.symbol
      AND minute >= %(spark_since)s AND minute <= %(now)s
) AS spark
ORDER BY r.position
"""


def snapshot_rows(conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per symbol of `params["symbols"]`, in that order: symbol, last price, its time,
    reference price, trades since `rate_since`, sparkline minutes and closes; of the market
    `params["market"]` (a `Market`)."""
    market = params["market"]
    rows = conn.execute(SNAPSHOT_SQL, {**params, "market": market.number}).fetchall()
    if compressed_catalog(conn, market):
        if not in_snapshot(conn):  # rows and blocks in one snapshot: read again inside one
            with snapshot(conn):
                return snapshot_rows(conn, params)
        return _with_blocks(conn, rows, params)
    return rows


def _with_blocks(
    conn: Connection, rows: list[tuple[Any, ...]], params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows' answers with the blocks' trades taken in: the last trade, the reference price
    and the recent trades' count read from rows and blocks (the sparkline is the rollup's)."""
    wanted, market = [row[0] for row in rows], params["market"]
    last = {point.symbol: point for point in latest_prices(conn, wanted, market=market)}
    sides = trades_around(conn, params["reference"], wanted, market=market)
    since, now = params["rate_since"], params["now"]
    out = []
    for symbol, _price, _at, _reference, _rows, minutes, closes in rows:
        earlier, later = sides.get(symbol, (None, None))
        reference = earlier or later
        recent = window_list(conn, symbol, since, now + MILLISECOND, market)
        count = sum(1 for trade in recent if since < trade.timestamp <= now)
        point = last.get(symbol)
        price = point.price if point is not None else None
        at = point.timestamp if point is not None else None
        reference_price = reference.price if reference is not None else None
        out.append((symbol, price, at, reference_price, count, minutes, closes))
    return out
