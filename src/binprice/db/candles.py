"""Candles (klines) built from stored trades, with Binance's interval names and alignment.

Intervals are Binance's: ``1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M``, all in UTC.

- Up to ``1d`` every width divides a day, so candles open on multiples of the width since
  midnight (equivalently, since the Unix epoch).
- ``3d`` is aligned to the epoch, as Binance's are: a 3-day candle opens on a day whose number
  since 1970-01-01 is a multiple of 3 (2026-01-01 is day 20454 = 3 * 6818, so 3d candles
  open on 2025-12-29, 2026-01-01, 2026-01-04, ...), not on the window's start or on a month.
- ``1w`` opens on Monday 00:00 UTC (the epoch was a Thursday: weeks count from 1970-01-05).
- ``1M`` opens on the 1st of each month, 00:00 UTC, and lasts the month's own length.

A candle's ``close_time`` is Binance's: the next candle's open time minus 1 ms.

The query reads the per-minute rollup ``trade_minutes`` (migrations 0004/0005: count, volume,
notional, high, low, first/last trade id, open and close per symbol and minute), so a year of
``1d`` candles adds up ~525,600 rollup rows instead of tens of millions of trades. A window's
ends need not be aligned: whole minutes come from the rollup and the partial minutes at the two
ends from raw trades (the ``(symbol, timestamp, trade_id) INCLUDE (price, quantity)`` index), as
``range`` does, so the first and last candle hold only the window's part of their interval. An
interval with no trade in the window has no candle.

Open and close of a candle are the open of its first minute and the close of its last (the
rollup's open/close are the prices of a minute's lowest and highest trade id, and Binance ids
grow with time within a symbol). Where raw trades join rollup buckets they are merged with
``min(ARRAY[first_id, open])``: PostgreSQL compares arrays element by element, so that is an
"open of the row with the lowest id" aggregate that needs no sort.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from binprice.db.blockreads import compressed_catalog
from binprice.db.queries import RANGE_BOUNDS, VWAP_CONTEXT, minute_bounds
from binprice.errors import UsageError
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols
from binprice.timespec import format_timestamp

__all__ = [
    "DEFAULT_CANDLES",
    "FIXED_CANDLES_SQL",
    "INTERVALS",
    "MONTHLY_CANDLES_SQL",
    "Candle",
    "Interval",
    "candles",
    "choose_interval",
    "parse_interval",
]

Connection = psycopg.Connection[Any]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The first Monday after the epoch: weekly candles count from here.
FIRST_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
MONTHS_PER_YEAR = 12
#: How many candles `candles` gives without a window: a screenful, as Binance's chart opens.
DEFAULT_CANDLES = 60
#: Average month length, used only to estimate how many ``1M`` candles a window holds.
_MONTH_ESTIMATE = timedelta(days=30.436875)


@dataclass(frozen=True, slots=True)
class Interval:
    """A kline interval: its Binance name and how it aligns; ``width`` is None for ``1M``."""

    name: str
    width: timedelta | None
    origin: datetime = EPOCH

    @property
    def monthly(self) -> bool:
        """True for ``1M``: calendar months, whose length varies."""
        return self.width is None

    def floor(self, moment: datetime) -> datetime:
        """The open time of the candle holding ``moment`` (naive means UTC)."""
        moment = as_utc(moment)
        if self.width is None:
            return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return self.origin + (moment - self.origin) // self.width * self.width

    def following(self, open_time: datetime) -> datetime:
        """The open time of the candle after the one opening at ``open_time``."""
        if self.width is not None:
            return open_time + self.width
        months = open_time.year * MONTHS_PER_YEAR + open_time.month  # month index, 1-based
        year, month = divmod(months, MONTHS_PER_YEAR)
        return open_time.replace(year=year, month=month + 1)

    def opens_before(self, moment: datetime, count: int) -> datetime:
        """Where the last ``count`` candles up to ``moment`` begin: the open time of the candle
        ``count - 1`` before the one holding ``moment``."""
        first = self.floor(moment)
        if self.width is not None:
            return first - (count - 1) * self.width
        year, month = divmod(first.year * MONTHS_PER_YEAR + first.month - count, MONTHS_PER_YEAR)
        return first.replace(year=year, month=month + 1)

    def close_time(self, open_time: datetime) -> datetime:
        """Binance's close time: the next open time minus one millisecond."""
        return self.following(open_time) - MILLISECOND

    def estimate(self, start: datetime, end: datetime) -> float:
        """About how many candles ``[start, end)`` spans (for choosing an interval)."""
        width = self.width or _MONTH_ESTIMATE
        return (end - start) / width


def _fixed(name: str, origin: datetime = EPOCH, **width: float) -> Interval:
    return Interval(name, timedelta(**width), origin)


#: Every interval by its Binance name (case matters: ``1m`` is a minute, ``1M`` a month).
INTERVALS: dict[str, Interval] = {
    interval.name: interval
    for interval in (
        _fixed("1m", minutes=1),
        _fixed("3m", minutes=3),
        _fixed("5m", minutes=5),
        _fixed("15m", minutes=15),
        _fixed("30m", minutes=30),
        _fixed("1h", hours=1),
        _fixed("2h", hours=2),
        _fixed("4h", hours=4),
        _fixed("6h", hours=6),
        _fixed("8h", hours=8),
        _fixed("12h", hours=12),
        _fixed("1d", days=1),
        _fixed("3d", days=3),
        _fixed("1w", FIRST_MONDAY, weeks=1),
        Interval("1M", None),
    )
}
INTERVAL_NAMES = " ".join(INTERVALS)


def parse_interval(name: str | Interval) -> Interval:
    """The interval called ``name``; raise :class:`UsageError` for anything else."""
    if isinstance(name, Interval):
        return name
    try:
        return INTERVALS[name.strip()]
    except KeyError:
        raise UsageError(f"invalid interval {name!r}: expected one of {INTERVAL_NAMES}") from None


def choose_interval(start: datetime, end: datetime, max_candles: int) -> Interval:
    """The finest interval that shows ``[start, end)`` in at most ``max_candles`` candles."""
    for interval in INTERVALS.values():
        if interval.estimate(start, end) <= max_candles:
            return interval
    return INTERVALS["1M"]


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline: the trades of ``symbol`` in ``[open_time, close_time]`` within the window.

    ``quote_volume`` = sum(price * quantity); ``vwap`` = quote_volume / volume, exact sums
    divided at 28 significant digits.
    """

    symbol: str
    open_time: datetime
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    vwap: Decimal


def _raw_edge(bucket: str, lo: str, hi: str) -> str:
    # A raw trade is a one-trade "minute" with the same columns as a rollup bucket, so both feed
    # the same final aggregate. Within a minute the rollup orders by trade id too.
    return f"""SELECT {bucket.format(column="timestamp")} AS bucket, 1 AS trades,
               quantity AS volume, price * quantity AS notional, price AS high, price AS low,
               trade_id AS first_id, price AS open, trade_id AS last_id, price AS close
        FROM trades
        WHERE trades.market = %(market)s AND trades.symbol = r.symbol
          AND trades.timestamp >= {lo} AND trades.timestamp < {hi}"""


def _block_edge(bucket: str, lo: str, hi: str) -> str:
    # A compressed month's trades in [lo, hi) (an end of the window, within a minute) decoded
    # on the server with `trades_all`'s expressions (exact: the compress check relies on them),
    # from the blocks holding them only: the block starting last before `lo` if it reaches
    # `lo`, and those starting inside. An aligned window's empty ends read no block.
    blocks = "FROM trade_blocks AS t WHERE t.market = %(market)s AND t.symbol = r.symbol"
    return f"""SELECT {bucket.format(column="d.ts")} AS bucket, 1 AS trades,
               d.quantity AS volume, d.price * d.quantity AS notional, d.price AS high,
               d.price AS low, d.trade_id AS first_id, d.price AS open, d.trade_id AS last_id,
               d.price AS close
        FROM (
            SELECT blk.first_id + coalesce(blk.ids[u.i], u.i - 1) AS trade_id,
                   round((blk.base_price + sum(u.p) OVER w)::numeric
                         / 10::numeric ^ blk.price_scale, blk.price_digits) AS price,
                   round(u.q::numeric / 10::numeric ^ blk.qty_scale, blk.qty_digits) AS quantity,
                   blk.first_ts + (sum(u.d) OVER w) * interval '1 millisecond' AS ts
            FROM (
                (SELECT * {blocks} AND {lo} < {hi} AND t.first_ts < {lo}
                 ORDER BY t.first_ts DESC, t.first_id DESC LIMIT 1)
                UNION ALL
                (SELECT * {blocks} AND {lo} < {hi} AND t.first_ts >= {lo} AND t.first_ts < {hi})
            ) AS blk
            CROSS JOIN LATERAL unnest(blk.ms, blk.price, blk.qty) WITH ORDINALITY AS u(d, p, q, i)
            WHERE blk.last_ts >= {lo}
            WINDOW w AS (PARTITION BY blk.first_ts, blk.first_id ORDER BY u.i)
        ) AS d
        WHERE d.ts >= {lo} AND d.ts < {hi}"""


def _edge(bucket: str, lo: str, hi: str, blocks: tuple[str, str] | None) -> str:
    """An end of the window from the rows, or from the rows and the blocks (a trade id in
    both, a late copy of a compressed trade, counts once). With the blocks, the bounds are
    parameters (the same instants as `lo` and `hi`, computed by `minute_bounds`): the planner
    then drops an empty end, and the months' partitions of rows and blocks that cannot hold
    it, which keeps the larger statement's planning short."""
    if blocks is None:
        return _raw_edge(bucket, lo, hi)
    return f"""SELECT DISTINCT ON (e.first_id) e.* FROM (
        {_raw_edge(bucket, *blocks)}
        UNION ALL
        {_block_edge(bucket, *blocks)}
    ) AS e"""


#: The window's partial end minutes as parameters, for the blocks (`edge_params`).
LEFT_EDGE = ("%(left_lo)s::timestamptz", "%(left_hi)s::timestamptz")
RIGHT_EDGE = ("%(right_lo)s::timestamptz", "%(right_hi)s::timestamptz")


def edge_params(start: datetime, end: datetime) -> dict[str, datetime]:
    """`LEFT_EDGE` and `RIGHT_EDGE` of the window ``[start, end)``: RANGE_BOUNDS's
    ``[s, ms)`` and ``[me, e)``."""
    ms, me = minute_bounds(start, end)
    return {"left_lo": start, "left_hi": ms, "right_lo": me, "right_hi": end}


def _candles_sql(bucket: str, *, blocks: bool = False) -> str:
    """The candle query; ``bucket`` maps a ``{column}`` time to its candle's open time; with
    `blocks`, the window's partial end minutes are read from compressed months' blocks too."""
    # Whole minutes are summed per bucket first (the costly part: numeric sums over up to a
    # year of minutes), then each bucket's open and close are two primary-key probes of its
    # first and last minute. That is cheaper than carrying (id, price) pairs through the big
    # aggregate, and right because ids grow with time: the first minute holds the lowest id.
    # The final aggregate merges those buckets with the raw trades of the partial end minutes.
    return f"""{RANGE_BOUNDS}
SELECT r.symbol, c.bucket, c.trades, c.volume, c.notional, c.high, c.low, c.open, c.close
FROM bounds CROSS JOIN unnest(%(symbols)s::text[]) WITH ORDINALITY AS r(symbol, position)
CROSS JOIN LATERAL (
    SELECT p.bucket, sum(p.trades)::bigint AS trades, sum(p.volume) AS volume,
           sum(p.notional) AS notional, max(p.high) AS high, min(p.low) AS low,
           (min(ARRAY[p.first_id::numeric, p.open]))[2] AS open,
           (max(ARRAY[p.last_id::numeric, p.close]))[2] AS close
    FROM (
        {_edge(bucket, "bounds.s", "bounds.ms", LEFT_EDGE if blocks else None)}
        UNION ALL
        SELECT m.bucket, m.trades, m.volume, m.notional, m.high, m.low,
               f.first_id, f.open, l.last_id, l.close
        FROM (
            SELECT {bucket.format(column="minute")} AS bucket, sum(trades) AS trades,
                   sum(volume) AS volume, sum(notional) AS notional, max(high) AS high,
                   min(low) AS low, min(minute) AS first_minute, max(minute) AS last_minute
            FROM trade_minutes
            WHERE market = %(market)s AND symbol = r.symbol AND minute >= bounds.ms
              AND minute < bounds.me
            GROUP BY 1
        ) AS m
        JOIN trade_minutes AS f ON f.market = %(market)s AND f.symbol = r.symbol
          AND f.minute = m.first_minute
        JOIN trade_minutes AS l ON l.market = %(market)s AND l.symbol = r.symbol
          AND l.minute = m.last_minute
        UNION ALL
        {_edge(bucket, "bounds.me", "bounds.e", RIGHT_EDGE if blocks else None)}
    ) AS p
    GROUP BY p.bucket
) AS c
ORDER BY r.position, c.bucket
"""


#: Fixed-width intervals: ``date_bin`` is plain arithmetic on the instant, so no time zone
#: enters; the origin (epoch or the first Monday) gives Binance's alignment.
FIXED_CANDLES_SQL = _candles_sql("date_bin(%(width)s::interval, {column}, %(origin)s)")
#: ``1M``: calendar months in UTC, whatever the session's time zone.
MONTHLY_CANDLES_SQL = _candles_sql("date_trunc('month', {column}, 'UTC')")
#: The same when the window touches a compressed month: its whole minutes are in the rollup
#: as ever, its partial end minutes in rows and blocks.
FIXED_BLOCK_CANDLES_SQL = _candles_sql(
    "date_bin(%(width)s::interval, {column}, %(origin)s)", blocks=True
)
MONTHLY_BLOCK_CANDLES_SQL = _candles_sql("date_trunc('month', {column}, 'UTC')", blocks=True)


def candle_query(
    interval: Interval, market: Market = DEFAULT_MARKET, *, blocks: bool = False
) -> tuple[str, dict[str, Any]]:
    """The SQL and the interval's and market's parameters for ``interval`` (the window and
    symbols are added); with `blocks`, for a window that touches a compressed month."""
    if interval.width is None:
        return (MONTHLY_BLOCK_CANDLES_SQL if blocks else MONTHLY_CANDLES_SQL), {
            "market": market.number
        }
    params = {"width": interval.width, "origin": interval.origin, "market": market.number}
    return (FIXED_BLOCK_CANDLES_SQL if blocks else FIXED_CANDLES_SQL), params


def candles(
    conn: Connection,
    symbols: Iterable[str],
    interval: str | Interval,
    start: datetime,
    end: datetime,
    *,
    market: Market = DEFAULT_MARKET,
) -> list[Candle]:
    """The candles of each symbol of `market` in ``[start, end)``, by symbol (as given) then
    open time.

    Naive datetimes are UTC. Intervals without trades, and symbols without any, have no
    candles: an empty list means nothing traded.
    """
    chosen = parse_interval(interval)
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        window = f"start {format_timestamp(start)} is not before end {format_timestamp(end)}"
        raise UsageError(f"empty window: {window}")
    wanted = list(normalize_symbols(symbols))
    edges = edge_params(start, end)
    # The whole minutes come from the rollup wherever their trades are stored: the blocks are
    # read only for a partial end minute in a compressed month (none in an aligned window).
    ends = [(lo, hi) for lo, hi in ((start, edges["left_hi"]), (edges["right_lo"], end)) if lo < hi]
    catalog = compressed_catalog(conn, market) if ends else None
    blocks = catalog is not None and any(catalog.overlaps(lo, hi) for lo, hi in ends)
    sql, params = candle_query(chosen, market, blocks=blocks)
    params.update(symbols=wanted, start=start, end=end)
    if blocks:
        params.update(edges)
    return [_candle(row, chosen) for row in conn.execute(sql, params)]


def missing_symbols(symbols: Sequence[str], found: Iterable[Candle]) -> list[str]:
    """The requested symbols (normalised) that have no candle in ``found``."""
    have = {candle.symbol for candle in found}
    return [symbol for symbol in normalize_symbols(symbols) if symbol not in have]


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _candle(row: Sequence[Any], interval: Interval) -> Candle:
    symbol, bucket, trades, volume, notional, high, low, open_, close = row
    open_time = bucket.astimezone(UTC)
    return Candle(
        symbol=symbol,
        open_time=open_time,
        close_time=interval.close_time(open_time),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        quote_volume=notional,
        trades=trades,
        vwap=VWAP_CONTEXT.divide(notional, volume),
    )
