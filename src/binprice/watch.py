"""What `binprice watch` shows, polled from the database: frozen snapshots, no printing.

Polling needs nothing from the ingestor (another process, maybe on another machine): one
statement per poll, a ``LATERAL`` per symbol, each part an index probe —

- the last trade: the primary key walked backwards (as ``latest``);
- the price a window ago (as-of, ``at --before``): one probe of the per-symbol time index; when
  nothing traded before the window (capture began inside it), the window's first trade;
- trades per second: an index-only count of the last ``rate_window`` of trades;
- the sparkline: the closes of the last minutes, straight from the rollup ``trade_minutes``,
  which the ingest's own commits keep current through the triggers.

So a poll costs well under a millisecond of server time per symbol and can run every second
next to a full-speed ingest. The clock is a parameter: tests pin it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from binprice.db.candles import as_utc
from binprice.db.queries import VWAP_CONTEXT, recorded_symbols
from binprice.db.watch import snapshot_rows
from binprice.errors import UsageError
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols
from binprice.timespec import format_duration, parse_duration

__all__ = [
    "MIN_EVERY",
    "Snapshot",
    "SymbolSnapshot",
    "Watch",
    "snapshot",
    "watch",
]

Connection = psycopg.Connection[Any]
Clock = Callable[[], datetime]

DEFAULT_WINDOW = timedelta(hours=1)
#: The shortest time between polls `binprice watch` takes: a poll is cheap, but one every few
#: milliseconds is a busy loop on the database, and a terminal cannot show it anyway.
MIN_EVERY = timedelta(milliseconds=100)
#: Trades per second is measured over this much of the recent past: long enough to be steady,
#: short enough to follow a burst.
DEFAULT_RATE_WINDOW = timedelta(seconds=10)
#: Minutes in the sparkline.
DEFAULT_MINUTES = 30
MINUTE = timedelta(minutes=1)
PERCENT = Decimal(100)


@dataclass(frozen=True, slots=True)
class SymbolSnapshot:
    """One symbol at one moment; prices are None when it never traded.

    ``change``/``change_percent`` compare the last price with the last price at or before the
    window's start, or the window's first price when nothing traded before it (None when the
    symbol never traded); ``closes`` has one entry per minute of
    the sparkline, oldest first, None for a minute without trades.
    """

    symbol: str
    price: Decimal | None
    last_trade_at: datetime | None
    reference_price: Decimal | None
    change: Decimal | None
    change_percent: Decimal | None
    trades_per_second: Decimal
    closes: tuple[Decimal | None, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every watched symbol at ``taken_at``."""

    taken_at: datetime
    window: timedelta
    rate_window: timedelta
    symbols: tuple[SymbolSnapshot, ...]


def snapshot(
    conn: Connection,
    symbols: Iterable[str] = (),
    *,
    window: timedelta = DEFAULT_WINDOW,
    now: datetime | None = None,
    rate_window: timedelta = DEFAULT_RATE_WINDOW,
    minutes: int = DEFAULT_MINUTES,
    market: Market = DEFAULT_MARKET,
) -> Snapshot:
    """One poll: each symbol of `market` (all its recorded symbols if none are given) as of
    ``now``."""
    taken_at = as_utc(now) if now is not None else datetime.now(UTC)
    wanted = list(normalize_symbols(symbols)) or recorded_symbols(conn, market)
    first_minute = taken_at.replace(second=0, microsecond=0) - (minutes - 1) * MINUTE
    params = {
        "symbols": wanted,
        "now": taken_at,
        "reference": taken_at - window,
        "rate_since": taken_at - rate_window,
        "spark_since": first_minute,
        "market": market,
    }
    rows = snapshot_rows(conn, params)
    spark = [first_minute + i * MINUTE for i in range(minutes)]
    found = tuple(_symbol(row, spark, rate_window) for row in rows)
    return Snapshot(taken_at, window, rate_window, found)


class Watch:
    """A polling source: the same question asked again with the clock's time at each poll."""

    def __init__(
        self,
        conn: Connection,
        symbols: Sequence[str] = (),
        *,
        window: timedelta = DEFAULT_WINDOW,
        clock: Clock | None = None,
        minutes: int = DEFAULT_MINUTES,
        market: Market = DEFAULT_MARKET,
    ) -> None:
        self._conn = conn
        self._market = market
        self._symbols = list(normalize_symbols(symbols))
        self._window = window
        self._clock = clock or (lambda: datetime.now(UTC))
        self._minutes = minutes

    def poll(self) -> Snapshot:
        """The state now (re-reading the list of symbols when none were given)."""
        return snapshot(
            self._conn,
            self._symbols,
            window=self._window,
            now=self._clock(),
            minutes=self._minutes,
            market=self._market,
        )


def watch(
    connection: Callable[[], Connection],
    symbols: Sequence[str] = (),
    *,
    window: timedelta | str = DEFAULT_WINDOW,
    every: timedelta | str = timedelta(seconds=1),
    count: int | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    market: Market = DEFAULT_MARKET,
) -> Iterator[Snapshot]:
    """A snapshot now, then one every ``every`` (``count`` of them, or for ever), each on the
    connection ``connection()`` gives at that poll. The durations are checked at once, before
    the first poll: ``every`` is at least ``MIN_EVERY``."""
    change_window = parse_duration(window) if isinstance(window, str) else window
    period = parse_duration(every) if isinstance(every, str) else every
    if period < MIN_EVERY:
        given = every.strip() if isinstance(every, str) else format_duration(every)
        raise UsageError(f"--every {given} is too short: at least {format_duration(MIN_EVERY)}")

    wanted = list(normalize_symbols(symbols))
    now = clock or (lambda: datetime.now(UTC))

    def polls() -> Iterator[Snapshot]:
        done = 0
        while count is None or done < count:
            if done:
                sleep(period.total_seconds())
            yield snapshot(connection(), wanted, window=change_window, now=now(), market=market)
            done += 1

    return polls()


def _symbol(row: Sequence[Any], spark: list[datetime], rate_window: timedelta) -> SymbolSnapshot:
    symbol, price, last_at, reference, trades, minutes, closes = row
    by_minute = dict(zip((m.astimezone(UTC) for m in minutes or ()), closes or (), strict=True))
    change = price - reference if price is not None and reference is not None else None
    percent = None
    if change is not None and reference:
        percent = VWAP_CONTEXT.divide(change * PERCENT, reference)
    seconds = Decimal(rate_window // timedelta(milliseconds=1)) / 1000
    return SymbolSnapshot(
        symbol=symbol,
        price=price,
        last_trade_at=last_at.astimezone(UTC) if last_at is not None else None,
        reference_price=reference,
        change=change,
        change_percent=percent,
        trades_per_second=VWAP_CONTEXT.divide(Decimal(trades), seconds),
        closes=tuple(by_minute.get(minute) for minute in spark),
    )
