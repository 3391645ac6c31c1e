"""What `binprice chart` draws (`Store.chart`): candles at a fitting interval, or the trades of a
window inside one interval as a price path. Data only: drawing is the command line's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import psycopg

from binprice.db.candles import (
    MILLISECOND,
    Candle,
    Interval,
    candles,
    choose_interval,
    parse_interval,
)
from binprice.errors import NotFoundError, UsageError
from binprice.export import trades
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols
from binprice.timespec import format_timestamp

#: Without --interval, a window that would show fewer candles than this is drawn as a line of
#: its trades: two or three fat candles say less than the trades do.
MIN_CANDLES = 3
#: A line chart keeps at most this many points per column of the terminal: the last trade of
#: each time slot, so memory stays bounded however many trades the window holds.
POINTS_PER_COLUMN = 2


@dataclass(frozen=True, slots=True)
class PricePath:
    """Trades drawn as a line: times and prices, already thinned to what the width can show."""

    times: tuple[datetime, ...]
    prices: tuple[Decimal, ...]


class Chart(NamedTuple):
    """A chart's title, its candles (at `interval`) or price path (`interval` None)."""

    title: str
    data: Sequence[Candle] | PricePath
    interval: Interval | None


def chart_data(
    conn: psycopg.Connection[Any],
    symbol: str,
    start: datetime,
    end: datetime,
    interval: str | None,
    *,
    max_candles: int,
    market: Market = DEFAULT_MARKET,
) -> Chart:
    """The chart of ``symbol``: candles at ``interval`` (default: the one that fits
    ``max_candles``), or the window's trades when it lies inside one candle (or a few)."""
    names = normalize_symbols([symbol])
    if len(names) != 1:
        raise UsageError("chart draws one symbol")
    chosen = parse_interval(interval) if interval else choose_interval(start, end, max_candles)
    window = f"{format_timestamp(start)} to {format_timestamp(end)}"
    one_candle = chosen.floor(start) == chosen.floor(end - MILLISECOND)  # the last instant
    if one_candle or (interval is None and chosen.estimate(start, end) < MIN_CANDLES):
        # The whole window is inside one candle (or a few): draw its trades instead.
        points = max_candles * POINTS_PER_COLUMN
        path = price_path(conn, names[0], start, end, points, market=market)
        if not path.times:
            raise NotFoundError(f"no trades from {window} for {names[0]}")
        return Chart(f"{names[0]} trades, {window} UTC", path, None)
    found = candles(conn, names, chosen, start, end, market=market)
    if not found:
        raise NotFoundError(f"no trades from {window} for {names[0]}")
    return Chart(f"{names[0]} {chosen.name} candles, {window} UTC", found, chosen)


def price_path(
    conn: psycopg.Connection[Any],
    symbol: str,
    start: datetime,
    end: datetime,
    points: int,
    *,
    market: Market = DEFAULT_MARKET,
) -> PricePath:
    """The window's trades thinned to at most ``points``: the last trade of each time slot."""
    slot = (end - start) / max(points, 1)
    kept: dict[int, tuple[datetime, Decimal]] = {}
    for trade in trades(conn, symbol, start, end, market):
        kept[(trade.timestamp - start) // slot] = (trade.timestamp, trade.price)
    ordered = [kept[key] for key in sorted(kept)]
    return PricePath(tuple(t for t, _ in ordered), tuple(p for _, p in ordered))
