"""The three questions binprice answers: latest price, price at a time, and a window summary.

Every query is one statement that probes an index per symbol (a ``LATERAL`` join over the
requested symbols), so a rare symbol costs as little as a busy one and a never-traded symbol
costs one empty probe:

- ``latest`` walks the primary key ``(symbol, trade_id)`` backwards: the highest trade id is the
  last trade (Binance ids increase with time within a symbol).
- ``at`` reads, on each side of the time, at most two rollup minutes (``trade_minutes``, one row
  per symbol and minute with its lowest and highest trade id, migration 0005): the one holding
  the time, else the previous (next) one, each as a range of the primary key (migration 0011
  dropped the per-symbol time index this took before).
- ``range`` adds up the whole minutes of the window from ``trade_minutes`` (migration 0004, kept
  by triggers) and reads raw trades the same way only for the partial minutes at its two ends,
  once each, so a day or a month costs about as much as a few minutes.
- "All recorded symbols" is found by a recursive CTE that hops from one symbol to the next in the
  primary key (a loose index scan): one probe per distinct symbol instead of reading every row.

Trade order is ``(timestamp, trade_id)``: fills of one order share a timestamp, and the higher id
happened later. Prices and volumes stay :class:`~decimal.Decimal` from PostgreSQL ``numeric``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, Inexact, Rounded
from typing import TYPE_CHECKING, Any

import psycopg

from binprice.db.catalog import compressed_catalog, in_snapshot, snapshot
from binprice.errors import UsageError
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols
from binprice.timespec import format_timestamp

if TYPE_CHECKING:
    # The compressed format is imported only where a compressed month is read.
    from binprice.db.blockreads import BlockTrade

__all__ = [
    "LATEST_SQL",
    "At",
    "Latest",
    "Range",
    "choose_nearest",
    "latest_prices",
    "nearest_trade_sql",
    "price_at",
    "price_range",
    "recorded_symbols",
]

#: VWAP is exact sums divided at 28 significant digits (Python's default decimal precision),
#: set explicitly so a caller's decimal context cannot change the answer.
VWAP_CONTEXT = Context(prec=28)

RECORDED_SYMBOLS_SQL = """
WITH RECURSIVE known(symbol) AS (
    (SELECT symbol FROM trades WHERE market = %(market)s ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT t.symbol FROM trades AS t WHERE t.market = %(market)s AND t.symbol > k.symbol
            ORDER BY t.symbol LIMIT 1)
    FROM known AS k
    WHERE k.symbol IS NOT NULL
)
SELECT symbol FROM known WHERE symbol IS NOT NULL
"""

LATEST_SQL = """
SELECT r.symbol, t.price, t.timestamp, t.trade_id
FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)
CROSS JOIN LATERAL (
    SELECT price, timestamp, trade_id FROM trades
    WHERE trades.market = %(market)s AND trades.symbol = r.symbol
    ORDER BY trade_id DESC LIMIT 1
) AS t
ORDER BY r.position
"""

# The row side of `at` and `range` (migration 0011): a symbol's trades near a time are found
# through the rollup, whose minutes carry their lowest and highest trade id, so the trades of a
# minute `m` are one range of the primary key (symbol, trade_id, timestamp): `_minute_rows`.
# It names no time at all (the caller bounds the time outside; OFFSET 0 keeps the planner from
# moving that in): any bound on `timestamp` inside is one the seed index (timestamp DESC, symbol)
# can walk, and whether the planner walks it then depends on the statistics. With the upper
# bound alone inside, as before, it did on the live month once ANALYZE had seen it (48 ms
# instead of 0.3 for one `at`, 200k trades a day, 6 days, 4 compressed; docs/storage-design.md
# "Left open"). Without it no partition is pruned: each partition's key is probed for the id
# range, a descent that finds nothing in the other months. For the same reason the bounds
# come from the rollup row, not from the query's constants: with a constant upper bound the
# planner walks the seed index down from it (measured: 72,639 other trades read for one minute).


def _minute_rows(m: str, t: str = "t") -> str:
    """The symbol's trades with ids in rollup minute `m`'s range (time bounds left to the
    caller: no bound on `timestamp` here, so only the primary key can serve it)."""
    return f"""(
        SELECT price, quantity, timestamp, trade_id FROM trades
        WHERE trades.market = {m}.market AND trades.symbol = r.symbol
          AND trades.trade_id BETWEEN {m}.first_id AND {m}.last_id
        OFFSET 0
    ) AS {t}"""


#: The minute holding a time, as the rollup trigger computes it (immutable, no zone lookup).
_FLOOR = "date_bin('1 minute', {ts}, '2000-01-01 00:00+00')"


def nearest_trade_sql(ts: str, *, before: bool, skip: str = "false") -> str:
    """The symbol's last trade at or before `ts` (`before`), else its first trade after `ts`,
    by (time, id); nothing when `skip` is true.

    Two minutes at most: the rollup minute holding `ts` (its trades on the right side of
    `ts`), else the symbol's previous (next) rollup minute, however far, whose trades are all
    on the right side: its last (first) trade. If that minute's trades are not rows (pruned
    with the rollup kept, or compressed) the answer is not a row: the walk never crosses such
    minutes (the blocks are asked separately). Exact whatever the ids' order within a minute.
    """
    order, cmp, step = ("DESC", "<=", "<") if before else ("ASC", ">", ">")
    floor = _FLOOR.format(ts=ts)
    return f"""(SELECT t.price, t.timestamp, t.trade_id
        FROM trade_minutes AS c CROSS JOIN LATERAL {_minute_rows("c")}
        WHERE c.market = %(market)s AND c.symbol = r.symbol AND c.minute = {floor}
          AND NOT ({skip})
          AND t.timestamp >= c.minute AND t.timestamp < c.minute + interval '1 minute'
          AND t.timestamp {cmp} {ts}
        ORDER BY t.timestamp {order}, t.trade_id {order} LIMIT 1)
    UNION ALL
    (SELECT t.price, t.timestamp, t.trade_id FROM (
            SELECT market, minute, first_id, last_id FROM trade_minutes
            WHERE market = %(market)s AND symbol = r.symbol AND minute {step} {floor}
              AND NOT ({skip})
            ORDER BY minute {order} LIMIT 1
        ) AS n CROSS JOIN LATERAL {_minute_rows("n")}
        WHERE t.timestamp >= n.minute AND t.timestamp < n.minute + interval '1 minute'
        ORDER BY t.timestamp {order}, t.trade_id {order} LIMIT 1)
    LIMIT 1"""


_TS = "%(ts)s::timestamptz"
AT_SQL = f"""
SELECT r.symbol, b.price, b.timestamp, b.trade_id, a.price, a.timestamp, a.trade_id
FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)
LEFT JOIN LATERAL ({nearest_trade_sql(_TS, before=True)}) AS b ON true
LEFT JOIN LATERAL ({nearest_trade_sql(_TS, before=False, skip="%(before)s")}) AS a ON true
ORDER BY r.position
"""

# `range` splits the window [s, e) into the whole UTC minutes inside it, [ms, me), read from the
# trigger-maintained rollup `trade_minutes`, and the partial minutes at its ends, [s, ms) and
# [me, e), read from raw trades (a window shorter than two minutes is all raw: ms = me = e).
# Each end is read once (`_edge`): its sums, and its prices and times in trade order, from which
# the window's open and close and the first trade at the high and the low are taken. Only when
# an end does not hold them is one whole minute read raw (`_middle_first`): the first or last
# rollup minute of [ms, me), or the first whose high/low is the window's.
RANGE_BOUNDS = """
WITH b AS (
    SELECT %(start)s::timestamptz AS s, %(end)s::timestamptz AS e,
           date_trunc('minute', %(start)s::timestamptz, 'UTC') AS floor_s,
           date_trunc('minute', %(end)s::timestamptz, 'UTC') AS floor_e
), inner_minutes AS (
    SELECT s, e,
           CASE WHEN floor_s = s THEN s ELSE floor_s + interval '1 minute' END AS first_m,
           floor_e AS end_m
    FROM b
), bounds AS (
    SELECT s, e,
           CASE WHEN first_m < end_m THEN first_m ELSE e END AS ms,
           CASE WHEN first_m < end_m THEN end_m ELSE e END AS me
    FROM inner_minutes
)"""


def _edge(lo: str, hi: str) -> str:
    """The symbol's raw trades in [lo, hi) (an end of the window: at most two rollup minutes),
    read once: their sums, and their prices and times in trade order."""
    return f"""SELECT count(*) AS trades, sum(t.quantity) AS volume,
           sum(t.price * t.quantity) AS notional, max(t.price) AS high, min(t.price) AS low,
           array_agg(t.price ORDER BY t.timestamp, t.trade_id) AS prices,
           array_agg(t.timestamp ORDER BY t.timestamp, t.trade_id) AS times
        FROM trade_minutes AS m CROSS JOIN LATERAL {_minute_rows("m")}
        WHERE m.market = %(market)s AND m.symbol = r.symbol
          AND m.minute > {lo} - interval '1 minute' AND m.minute < {hi}
          AND t.timestamp >= m.minute AND t.timestamp < m.minute + interval '1 minute'
          AND t.timestamp >= {lo} AND t.timestamp < {hi}"""


def _middle_first(column: str, order: str = "ASC", *, minutes: str = "", trades: str = "") -> str:
    """`column` of the first (`order` ASC) or last trade of the first (last) rollup minute of
    [ms, me) that satisfies `minutes`, among its trades that satisfy `trades`, read raw: one
    minute."""
    return f"""(SELECT t.{column} FROM (
            SELECT market, minute, first_id, last_id FROM trade_minutes
            WHERE market = %(market)s AND symbol = r.symbol AND minute >= bounds.ms
              AND minute < bounds.me {minutes}
            ORDER BY minute {order} LIMIT 1
        ) AS m CROSS JOIN LATERAL {_minute_rows("m")}
        WHERE t.timestamp >= m.minute AND t.timestamp < m.minute + interval '1 minute' {trades}
        ORDER BY t.timestamp {order}, t.trade_id {order} LIMIT 1)"""


def _first_at(column: str) -> str:
    """The time of the window's first trade at its `high` or `low`: in the left end, else in
    the first rollup minute with that high/low, else in the right end (COALESCE reads the
    middle minute only when the left end does not hold the price)."""
    middle = _middle_first(
        "timestamp", minutes=f"AND {column} = a.{column}", trades=f"AND t.price = a.{column}"
    )
    at = "{e}.times[array_position({e}.prices, a.{col})]"
    return f"""coalesce({at.format(e="le", col=column)}, {middle},
        {at.format(e="re", col=column)})"""


RANGE_SQL = f"""{RANGE_BOUNDS}
SELECT r.symbol, a.trades, a.volume, a.notional, a.high, a.low,
       coalesce(le.prices[1], {_middle_first("price")}, re.prices[1]),
       coalesce(re.prices[re.trades], {_middle_first("price", order="DESC")},
                le.prices[le.trades]),
       {_first_at("high")}, {_first_at("low")}
FROM bounds CROSS JOIN unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)
CROSS JOIN LATERAL ({_edge("bounds.s", "bounds.ms")}) AS le
CROSS JOIN LATERAL ({_edge("bounds.me", "bounds.e")}) AS re
CROSS JOIN LATERAL (
    SELECT sum(p.trades)::bigint AS trades, sum(p.volume) AS volume, sum(p.notional) AS notional,
           max(p.high) AS high, min(p.low) AS low
    FROM (
        SELECT le.trades, le.volume, le.notional, le.high, le.low
        UNION ALL
        SELECT sum(trades), sum(volume), sum(notional), max(high), min(low) FROM trade_minutes
        WHERE market = %(market)s AND symbol = r.symbol AND minute >= bounds.ms
          AND minute < bounds.me
        UNION ALL
        SELECT re.trades, re.volume, re.notional, re.high, re.low
    ) AS p
) AS a
WHERE a.trades > 0
ORDER BY r.position
"""

Connection = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Latest:
    """One trade: the answer of ``latest`` for a symbol."""

    symbol: str
    price: Decimal
    timestamp: datetime
    trade_id: int


@dataclass(frozen=True, slots=True)
class At:
    """The trade chosen for a requested time; ``offset_ms`` = trade time - requested (signed)."""

    symbol: str
    price: Decimal
    timestamp: datetime
    trade_id: int
    requested: datetime
    offset_ms: int


@dataclass(frozen=True, slots=True)
class Range:
    """Trades of one symbol in ``[start, end)``.

    ``high_at``/``low_at`` are the times of the *first* trade at the high/low price; ``open`` and
    ``close`` are the prices of the first and last trade; ``vwap`` = sum(price*quantity) /
    sum(quantity), exact sums divided at 28 significant digits.
    """

    symbol: str
    start: datetime
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    high_at: datetime
    low_at: datetime
    trades: int
    volume: Decimal
    vwap: Decimal


def recorded_symbols(conn: Connection, market: Market = DEFAULT_MARKET) -> list[str]:
    """Every symbol of `market` with at least one trade, in alphabetical order (a loose index
    scan, of the blocks too when months are compressed)."""
    params = {"market": market.number}
    found = [row[0] for row in conn.execute(RECORDED_SYMBOLS_SQL, params).fetchall()]
    if compressed_catalog(conn, market):
        from binprice.db.blockreads import block_symbols

        return sorted({*found, *block_symbols(conn, market)})
    return found


def latest_prices(
    conn: Connection, symbols: Iterable[str] = (), *, market: Market = DEFAULT_MARKET
) -> list[Latest]:
    """The last trade of each symbol of `market` (all its recorded symbols if none are given),
    in the order asked; a symbol without trades is left out."""
    wanted = _resolve(conn, symbols, market)
    rows = conn.execute(LATEST_SQL, {"symbols": wanted, "market": market.number}).fetchall()
    found = {row[0]: Latest(row[0], row[1], _utc(row[2]), row[3]) for row in rows}
    if compressed_catalog(conn, market):
        if not in_snapshot(conn):  # rows and blocks in one snapshot: read again inside one
            with snapshot(conn):
                return latest_prices(conn, wanted, market=market)
        _latest_in_blocks(conn, wanted, found, market)
    return [found[symbol] for symbol in wanted if symbol in found]


def _latest_in_blocks(
    conn: Connection, wanted: list[str], found: dict[str, Latest], market: Market
) -> None:
    """Replace a symbol's row answer by its last block's last trade where that is newer."""
    from binprice.db.blockreads import last_blocks, trade_at

    above = {symbol: found[symbol].trade_id if symbol in found else None for symbol in wanted}
    for symbol, block in last_blocks(conn, above, market).items():
        last = trade_at(block, block.trades - 1)
        found[symbol] = Latest(symbol, last.price, last.timestamp, last.trade_id)


def price_at(
    conn: Connection,
    ts: datetime,
    symbols: Iterable[str] = (),
    *,
    before: bool = False,
    within: timedelta | None = None,
    market: Market = DEFAULT_MARKET,
) -> list[At]:
    """The trade nearest to ``ts`` for each symbol; a tie goes to the earlier trade.

    ``before=True`` gives as-of semantics (the last trade at or before ``ts``). ``within`` refuses
    trades farther than that from ``ts``; such symbols count as missing.
    """
    _require_aware(ts)
    wanted = _resolve(conn, symbols, market)
    sides = trades_around(conn, ts, wanted, before=before, market=market)
    results: list[At] = []
    for symbol in wanted:
        earlier, later = sides.get(symbol, (None, None))
        chosen = choose_nearest(ts, earlier, later, within=within)
        if chosen is not None:
            results.append(chosen)
    return results


def trades_around(
    conn: Connection,
    ts: datetime,
    wanted: list[str],
    *,
    before: bool = False,
    market: Market = DEFAULT_MARKET,
) -> dict[str, tuple[Latest | None, Latest | None]]:
    """Per symbol, the last trade at or before ``ts`` and (unless ``before``) the first after."""
    params = {"symbols": wanted, "ts": ts, "before": before, "market": market.number}
    rows = conn.execute(AT_SQL, params).fetchall()
    sides: dict[str, tuple[Latest | None, Latest | None]] = {}
    for row in rows:
        earlier = Latest(row[0], row[1], _utc(row[2]), row[3]) if row[3] is not None else None
        later = Latest(row[0], row[4], _utc(row[5]), row[6]) if row[6] is not None else None
        sides[row[0]] = (earlier, later)
    if compressed_catalog(conn, market):
        if not in_snapshot(conn):  # rows and blocks in one snapshot: read again inside one
            with snapshot(conn):
                return trades_around(conn, ts, wanted, before=before, market=market)
        _around_in_blocks(conn, ts, sides, before=before, market=market)
    return sides


def _around_in_blocks(
    conn: Connection,
    ts: datetime,
    sides: dict[str, tuple[Latest | None, Latest | None]],
    *,
    before: bool,
    market: Market,
) -> None:
    """Merge into each symbol's (earlier, later) pair the nearest block trades on each side."""
    from binprice.db.blockreads import blocks_around, nearest_in

    found = blocks_around(conn, list(sides), ts, before=before, market=market)
    for symbol, blocks in found.items():
        earlier, later = sides.get(symbol, (None, None))
        in_earlier, in_later = nearest_in(blocks, ts)
        if in_earlier is not None and (
            earlier is None or (in_earlier.timestamp, in_earlier.trade_id) > _key(earlier)
        ):
            earlier = _as_latest(symbol, in_earlier)
        if (
            not before
            and in_later is not None
            and (later is None or (in_later.timestamp, in_later.trade_id) < _key(later))
        ):
            later = _as_latest(symbol, in_later)
        sides[symbol] = (earlier, later)


def _key(point: Latest) -> tuple[datetime, int]:
    return point.timestamp, point.trade_id


def _as_latest(symbol: str, trade: BlockTrade) -> Latest:
    return Latest(symbol, trade.price, trade.timestamp, trade.trade_id)


def choose_nearest(
    requested: datetime,
    earlier: Latest | None,
    later: Latest | None,
    *,
    within: timedelta | None = None,
) -> At | None:
    """Pick the closer of the trades on each side of ``requested``; equal distance → earlier."""
    candidates = [point for point in (earlier, later) if point is not None]
    if not candidates:
        return None
    # min() keeps the first of equals, and earlier comes first: that is the tie rule.
    best = min(candidates, key=lambda point: abs(point.timestamp - requested))
    distance = abs(best.timestamp - requested)
    if within is not None and distance > within:
        return None
    offset_ms = (best.timestamp - requested) // timedelta(milliseconds=1)
    return At(best.symbol, best.price, best.timestamp, best.trade_id, requested, offset_ms)


def price_range(
    conn: Connection,
    start: datetime,
    end: datetime,
    symbols: Iterable[str] = (),
    *,
    market: Market = DEFAULT_MARKET,
) -> list[Range]:
    """Summarise each symbol's trades in ``[start, end)``; symbols without trades are left out."""
    _require_aware(start)
    _require_aware(end)
    if start >= end:
        window = f"start {format_timestamp(start)} is not before end {format_timestamp(end)}"
        raise UsageError(f"empty window: {window}")
    wanted = _resolve(conn, symbols, market)
    if in_snapshot(conn) and compressed_catalog(conn, market).overlaps(start, end):
        return _range_with_blocks(conn, wanted, start, end, market)
    params = {"symbols": wanted, "start": start, "end": end, "market": market.number}
    rows = conn.execute(RANGE_SQL, params).fetchall()
    # The catalog after the rows: if it shows no blocks in the window now, none had been
    # committed when the rows were read (a day's blocks and the DELETE of its rows commit
    # together), so the rows' answer is whole; else rows and blocks in one snapshot.
    if not in_snapshot(conn) and compressed_catalog(conn, market).overlaps(start, end):
        with snapshot(conn):
            return price_range(conn, start, end, wanted, market=market)
    return [_summary(row, start, end) for row in rows]


# --- range over compressed months -------------------------------------------------------------
#
# The same answer as RANGE_SQL, put together here: whole minutes from the rollup (which
# compression keeps), the partial minutes at the ends from rows and blocks (one or two blocks
# each), and the minute holding the first trade at the high or low read the same way.

#: Exact decimal arithmetic (a trap, never a rounding): numeric sums and products keep every
#: digit, and so must the sums made here.
EXACT = Context(prec=1000, traps=[Inexact, Rounded])

#: The rollup's whole minutes [ms, me) per symbol: the sums, and the open of the first minute
#: and the close of the last (ids grow with time: the lowest id is the first trade).
RANGE_MINUTES_SQL = """
SELECT r.symbol, m.trades, m.volume, m.notional, m.high, m.low, f.open, l.close
FROM unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)
CROSS JOIN LATERAL (
    SELECT sum(trades)::bigint AS trades, sum(volume) AS volume, sum(notional) AS notional,
           max(high) AS high, min(low) AS low, min(minute) AS first_minute,
           max(minute) AS last_minute
    FROM trade_minutes
    WHERE market = %(market)s AND symbol = r.symbol AND minute >= %(ms)s AND minute < %(me)s
) AS m
LEFT JOIN trade_minutes AS f ON f.market = %(market)s AND f.symbol = r.symbol
  AND f.minute = m.first_minute
LEFT JOIN trade_minutes AS l ON l.market = %(market)s AND l.symbol = r.symbol
  AND l.minute = m.last_minute
ORDER BY r.position
"""
#: The first whole minute of [ms, me) whose high (or low) is the given price.
_MINUTE_AT = """
SELECT minute FROM trade_minutes
WHERE market = %(market)s AND symbol = %(symbol)s AND minute >= %(ms)s AND minute < %(me)s
  AND {column} = %(price)s
ORDER BY minute LIMIT 1
"""
MINUTE_AT_HIGH_SQL = _MINUTE_AT.format(column="high")
MINUTE_AT_LOW_SQL = _MINUTE_AT.format(column="low")
MINUTE = timedelta(minutes=1)


def minute_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """RANGE_BOUNDS in Python: the whole minutes ``[ms, me)`` inside ``[start, end)``, or
    ``(end, end)`` when there are none to take from the rollup."""
    floor_s = start.replace(second=0, microsecond=0)
    floor_e = end.replace(second=0, microsecond=0)
    first = start if floor_s == start else floor_s + MINUTE
    return (first, floor_e) if first < floor_e else (end, end)


@dataclass(slots=True)
class Part:
    """Trades of one symbol folded together, in trade order (parts fold left to right)."""

    trades: int
    volume: Decimal
    notional: Decimal
    high: Decimal
    low: Decimal
    open: Decimal
    close: Decimal

    def then(self, later: Part | None) -> Part:
        if later is None:
            return self
        return Part(
            self.trades + later.trades,
            EXACT.add(self.volume, later.volume),
            EXACT.add(self.notional, later.notional),
            max(self.high, later.high),
            min(self.low, later.low),
            self.open,
            later.close,
        )


def fold(trades: Sequence[BlockTrade]) -> Part | None:
    """The part made of `trades` (in trade order); None for no trade."""
    if not trades:
        return None
    volume = notional = Decimal(0)
    for trade in trades:
        volume = EXACT.add(volume, trade.quantity) if volume else trade.quantity
        product = EXACT.multiply(trade.price, trade.quantity)
        notional = EXACT.add(notional, product) if notional else product
    prices = [trade.price for trade in trades]
    return Part(len(trades), volume, notional, max(prices), min(prices), prices[0], prices[-1])


def _range_with_blocks(
    conn: Connection, wanted: list[str], start: datetime, end: datetime, market: Market
) -> list[Range]:
    from binprice.db.blockreads import window_list

    start, end = start.astimezone(UTC), end.astimezone(UTC)
    ms, me = minute_bounds(start, end)
    params = {"symbols": wanted, "ms": ms, "me": me, "market": market.number}
    middles = {row[0]: row for row in conn.execute(RANGE_MINUTES_SQL, params).fetchall()}
    found = []
    for symbol in wanted:
        left = window_list(conn, symbol, start, ms, market)
        right = window_list(conn, symbol, me, end, market)
        row = middles.get(symbol)
        middle = None
        if row is not None and row[1]:
            middle = Part(row[1], row[2], row[3], row[4], row[5], row[6], row[7])
        parts = [part for part in (fold(left), middle, fold(right)) if part is not None]
        if not parts:
            continue
        total = parts[0]
        for part in parts[1:]:
            total = total.then(part)
        edges = (left, right, (symbol, ms, me), market)
        found.append(
            Range(
                symbol=symbol,
                start=start,
                end=end,
                open=total.open,
                high=total.high,
                low=total.low,
                close=total.close,
                high_at=_first_at_price(conn, total.high, edges, MINUTE_AT_HIGH_SQL),
                low_at=_first_at_price(conn, total.low, edges, MINUTE_AT_LOW_SQL),
                trades=total.trades,
                volume=total.volume,
                vwap=VWAP_CONTEXT.divide(total.notional, total.volume),
            )
        )
    return found


def _first_at_price(
    conn: Connection,
    price: Decimal,
    edges: tuple[list[BlockTrade], list[BlockTrade], tuple[str, datetime, datetime], Market],
    minute_sql: str,
) -> datetime:
    """The time of the window's first trade at `price`: in the left edge, else in the first
    whole minute whose high/low it is, else in the right edge."""
    from binprice.db.blockreads import window_list

    left, right, (symbol, ms, me), market = edges
    for trade in left:
        if trade.price == price:
            return trade.timestamp
    if ms < me:
        params = {"symbol": symbol, "ms": ms, "me": me, "price": price, "market": market.number}
        minute = conn.execute(minute_sql, params).fetchone()
        if minute is not None:
            moment = minute[0].astimezone(UTC)
            for trade in window_list(conn, symbol, moment, moment + MINUTE, market):
                if trade.price == price:
                    return trade.timestamp
    for trade in right:
        if trade.price == price:
            return trade.timestamp
    raise AssertionError(f"no trade of {symbol} at {price}: the rollup disagrees with trades")


def _summary(row: Sequence[Any], start: datetime, end: datetime) -> Range:
    symbol, trades, volume, notional, high, low, open_, close, high_at, low_at = row
    return Range(
        symbol=symbol,
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        open=open_,
        high=high,
        low=low,
        close=close,
        high_at=_utc(high_at),
        low_at=_utc(low_at),
        trades=trades,
        volume=volume,
        vwap=VWAP_CONTEXT.divide(notional, volume),
    )


def _resolve(conn: Connection, symbols: Iterable[str], market: Market) -> list[str]:
    return list(normalize_symbols(symbols)) or recorded_symbols(conn, market)


def _utc(value: datetime) -> datetime:
    # psycopg returns timestamptz in the session time zone; answers are always UTC.
    return value.astimezone(UTC)


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError("timestamps passed to queries must be timezone-aware")
