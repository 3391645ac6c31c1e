"""Trade ids stored more than once: the half of `binprice gaps --verify` that holes cannot show.

Since `trades` is partitioned by month its primary key is `(symbol, trade_id, timestamp)`, so
the database no longer refuses a second row with a known id at another time (an archive of
another market imported beside live trades did exactly that). A conflicting copy breaks every
answer by id, so the check must find it without reading every trade.

The per-minute rollup (`trade_minutes`, kept exact by triggers) gives each minute's id range.
Two rows with id `x` in different minutes put `x` in both minutes' ranges, so those ranges
overlap. Sorting a symbol's minutes by `first_id`, the later of any two overlapping ranges
starts at or below the running maximum of the `last_id`s before it: that flags
`first_id..least(last_id, running max)`, which holds every id it shares with an earlier minute.
Two rows with one id in the same minute make the minute hold more rows than its id span, which
flags the minute. Only flagged id ranges are then read from `trades`, by primary key.

What no rollup can show is a duplicate and a missing id balancing each other inside one
minute (a second row at another millisecond of the same minute, with a neighbouring id absent).
Binance gives an id one time, so that takes two sources disagreeing within one minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from binprice.markets import DEFAULT_MARKET, Market

__all__ = ["DUPLICATES_LISTED", "Duplicate", "Duplicates", "find_duplicates"]

Connection = psycopg.Connection[Any]

#: How many duplicated ids per symbol are returned with their rows (all are counted).
DUPLICATES_LISTED = 100

#: Per symbol, each id stored more than once (the first `listed` of them with every copy's time
#: and price) and how many there are. The suspect id ranges (see the module's docstring) are
#: merged with range_agg, so each stored id is read once, by primary key.
DUPLICATES_SQL = """
WITH suspect AS (
    SELECT w.symbol, m.first_id,
           CASE WHEN m.trades > m.last_id - m.first_id + 1 THEN m.last_id
                ELSE least(m.last_id, m.max_before) END AS last_id
    FROM unnest(%(symbols)s::text[], %(starts)s::timestamptz[]) AS w(symbol, start)
    CROSS JOIN LATERAL (
        SELECT first_id, last_id, trades,
               max(last_id) OVER (ORDER BY first_id, minute
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS max_before
        FROM trade_minutes
        WHERE trade_minutes.market = %(market)s AND trade_minutes.symbol = w.symbol
          AND minute >= w.start AND minute < %(end)s
    ) AS m
    WHERE m.first_id <= m.max_before OR m.trades > m.last_id - m.first_id + 1
), merged AS (
    SELECT symbol, unnest(range_agg(int8range(first_id, last_id, '[]'))) AS ids
    FROM suspect GROUP BY symbol
), found AS (
    SELECT m.symbol, d.trade_id, d.times, d.prices,
           row_number() OVER (PARTITION BY m.symbol ORDER BY d.trade_id) AS n,
           count(*) OVER (PARTITION BY m.symbol) AS total
    FROM merged AS m
    CROSS JOIN LATERAL (
        SELECT trade_id, array_agg(timestamp ORDER BY timestamp) AS times,
               array_agg(price ORDER BY timestamp) AS prices
        FROM trades
        WHERE trades.market = %(market)s AND trades.symbol = m.symbol
          AND trade_id >= lower(m.ids) AND trade_id < upper(m.ids)
        GROUP BY trade_id
        HAVING count(*) > 1
    ) AS d
)
SELECT symbol, trade_id, times, prices, total FROM found
WHERE n <= %(listed)s
ORDER BY symbol, trade_id
"""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An id of `symbol` stored more than once: each copy's time and price, oldest first."""

    symbol: str
    trade_id: int
    copies: tuple[tuple[datetime, Decimal], ...]


@dataclass(frozen=True, slots=True)
class Duplicates:
    """What the check found for one symbol: how many ids are stored more than once, and the
    first `DUPLICATES_LISTED` of them with their rows."""

    count: int
    listed: tuple[Duplicate, ...]


def find_duplicates(
    conn: Connection,
    symbols: Sequence[str],
    starts: Sequence[datetime],
    end: datetime,
    *,
    market: Market = DEFAULT_MARKET,
) -> dict[str, Duplicates]:
    """Per symbol of `symbols` with an id stored twice in the minutes from its start in
    `starts` up to `end`, what was found (symbols without any are left out)."""
    params = {
        "symbols": list(symbols),
        "starts": list(starts),
        "end": end,
        "listed": DUPLICATES_LISTED,
        "market": market.number,
    }
    counts: dict[str, int] = {}
    listed: dict[str, list[Duplicate]] = {}
    for symbol, trade_id, times, prices, total in conn.execute(DUPLICATES_SQL, params):
        copies = tuple((t.astimezone(UTC), p) for t, p in zip(times, prices, strict=True))
        listed.setdefault(symbol, []).append(Duplicate(symbol, trade_id, copies))
        counts[symbol] = int(total)
    return {s: Duplicates(counts[s], tuple(found)) for s, found in listed.items()}
