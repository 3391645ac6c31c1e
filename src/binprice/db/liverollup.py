"""The live writer's own rollup: a batch's per-(symbol, minute) aggregates, computed in Python.

The rollup trigger on `trades` (migration 0011/0012) captures every inserted row in a
transition table and aggregates it in SQL: about a quarter of the server's work per live
trade. The live writer already holds each batch in memory, so it computes the same aggregates
itself (`roll_up`, exact: Decimal arithmetic with a precision no product of two Binance
numbers can exceed), COPYs the rows straight into the month's partition (a statement that
targets a partition fires the partition's statement triggers, not the parent's, and a
partition has none) and upserts the minutes with the trigger's own merge in the same
transaction (`UPSERT_MINUTES`). See docs/storage-design.md, "Live month".

Only a batch whose every row is inserted takes that path: a batch holding a stored trade is
written through the parent's staging fallback, whose `INSERT … ON CONFLICT DO NOTHING` fires
the trigger for the rows it did insert, so a duplicate is never rolled up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext
from typing import TypeAlias

from binprice.exchange.protocol import WireTrade

MINUTE_MS = 60_000

#: (symbol, minute as epoch minutes, trades, volume, notional, high, low, first_id, last_id,
#: open, close): one row of `trade_minutes` for the batch's trades of that symbol and minute.
MinuteRow: TypeAlias = tuple[
    str, int, int, Decimal, Decimal, Decimal, Decimal, int, int, Decimal, Decimal
]

#: PostgreSQL's numeric is exact; the default context (28 digits) would round a notional
#: such as 123456.12345678 * 9876543.87654321 (tests/test_live_rollup.py).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def roll_up(trades: Iterable[WireTrade]) -> list[MinuteRow]:
    """Per (symbol, UTC minute) of `trades`: what the rollup trigger would add for them.

    The minute is the epoch-minute floor of the trade time, `date_bin('1 minute', …)`'s bin;
    open and close are the prices of the lowest and highest id, as in the trigger.
    """
    acc: dict[tuple[str, int], list[object]] = {}
    get = acc.get
    with localcontext(_EXACT):
        for t in trades:
            key = (t.symbol, t.time_ms // MINUTE_MS)
            a = get(key)
            p = t.price
            q = t.quantity
            i = t.trade_id
            if a is None:
                acc[key] = [1, q, p * q, p, p, i, i, p, p]
                continue
            a[0] += 1  # type: ignore[operator]
            a[1] += q  # type: ignore[operator]
            a[2] += p * q  # type: ignore[operator]
            if p > a[3]:  # type: ignore[operator]
                a[3] = p
            elif p < a[4]:  # type: ignore[operator]
                a[4] = p
            if i > a[6]:  # type: ignore[operator]
                a[6] = i
                a[8] = p
            elif i < a[5]:  # type: ignore[operator]
                a[5] = i
                a[7] = p
    return [(s, m, *a) for (s, m), a in acc.items()]  # type: ignore[misc]


def minute_columns(rows: Sequence[MinuteRow]) -> list[list[object]]:
    """`rows` as the eleven arrays `UPSERT_MINUTES` unnests."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 11


#: The trigger's merge (0011's one pass, 0012's key), for every upsert of `trade_minutes` rows
#: aliased `m`: counts and sums add, high and low widen, open and close follow the lowest and
#: highest id.
MINUTE_MERGE = """
    trades = m.trades + EXCLUDED.trades,
    volume = m.volume + EXCLUDED.volume,
    notional = m.notional + EXCLUDED.notional,
    high = greatest(m.high, EXCLUDED.high),
    low = least(m.low, EXCLUDED.low),
    open = CASE WHEN EXCLUDED.first_id < m.first_id THEN EXCLUDED.open ELSE m.open END,
    close = CASE WHEN EXCLUDED.last_id > m.last_id THEN EXCLUDED.close ELSE m.close END,
    first_id = least(m.first_id, EXCLUDED.first_id),
    last_id = greatest(m.last_id, EXCLUDED.last_id)"""

#: One statement per batch: the market, then `minute_columns`. Sorted by the key like the
#: trigger's, so two writers of the same minutes lock them in the same order.
UPSERT_MINUTES = f"""
INSERT INTO trade_minutes AS m (market, symbol, minute, trades, volume, notional, high, low,
                                first_id, last_id, open, close)
SELECT %s, u.s, 'epoch'::timestamptz + u.mn * interval '1 minute', u.n, u.v, u.nt, u.hi, u.lo,
       u.f, u.l, u.o, u.c
FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::numeric[], %s::numeric[], %s::numeric[],
            %s::numeric[], %s::int8[], %s::int8[], %s::numeric[], %s::numeric[])
     AS u(s, mn, n, v, nt, hi, lo, f, l, o, c)
ORDER BY u.s, u.mn
ON CONFLICT (market, symbol, minute) DO UPDATE SET{MINUTE_MERGE}"""

#: The month partitions of `trades` attached now (the DEFAULT partition is not one).
ATTACHED_MONTHS = (
    "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'trades'::regclass AND c.relname ~ '^trades_[0-9]{4}_[0-9]{2}$'"
)
