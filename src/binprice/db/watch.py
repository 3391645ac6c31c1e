"""The one query `binprice watch` polls: each symbol's last price, reference price, rate and
sparkline in a single round trip."""

from __future__ import annotations

from typing import Any

import psycopg

from binprice.db.queries import ROW_SPAN, nearest_trade_sql

Connection = psycopg.Connection[Any]

#: The price at the window's start: the last trade at or before it, else the first after it,
#: found as `at` finds them (through the rollup's per-minute id ranges, see `db.queries`).
_REFERENCE = nearest_trade_sql(
    "t.timestamp <= %(reference)s", "DESC", minutes="m.minute <= %(reference)s"
)
_SINCE = nearest_trade_sql(
    "t.timestamp > %(reference)s",
    "ASC",
    minutes="ref.price IS NULL AND m.minute > %(reference)s - interval '1 minute'",
)

#: One LATERAL lookup per part and symbol (the last trade by id, the price at the window's
#: start by time, the per-minute rollup for the sparkline); tests/test_watch_plans.py checks
#: the plan.
SNAPSHOT_SQL = f"""
SELECT r.symbol, last.price, last.timestamp, coalesce(ref.price, since.price), rate.trades,
       spark.minutes, spark.closes
FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)
{ROW_SPAN}
LEFT JOIN LATERAL (
    SELECT price, timestamp FROM trades WHERE trades.symbol = r.symbol
    ORDER BY trade_id DESC LIMIT 1
) AS last ON true
LEFT JOIN LATERAL ({_REFERENCE}) AS ref ON true
LEFT JOIN LATERAL ({_SINCE}) AS since ON true
CROSS JOIN LATERAL (
    SELECT count(*) AS trades FROM trades
    WHERE trades.symbol = r.symbol AND trades.timestamp > %(rate_since)s
      AND trades.timestamp <= %(now)s
) AS rate
CROSS JOIN LATERAL (
    SELECT array_agg(minute ORDER BY minute) AS minutes, array_agg(close ORDER BY minute) AS closes
    FROM trade_minutes
    WHERE trade_minutes.symbol = r.symbol AND minute >= %(spark_since)s AND minute <= %(now)s
) AS spark
ORDER BY r.position
"""


def snapshot_rows(conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per symbol of `params["symbols"]`, in that order: symbol, last price, its time,
    reference price, trades since `rate_since`, sparkline minutes and closes."""
    return conn.execute(SNAPSHOT_SQL, params).fetchall()
