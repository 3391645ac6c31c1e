"""One market per seed: where the test archive's history and the test exchange's live trades
sit on a symbol's id line, so that the same id is never two different trades (#20).

A symbol's history trades ``per_day`` trades every UTC day, one id after the other, anchored
so that ``SymbolSpec.first_id`` is the first id of :data:`ANCHOR_DAY`: the ids of a day never
depend on which days an archive serves. Each day's trades come from a random stream of their
own (seed, symbol, day), from a price that only depends on the day, so two archives of one
seed agree on every file they both have.

The test exchange starts where the history is at the moment it starts (:func:`live_spec`):
its ids continue the history's, above every id of the days before, and its trades happen from
then on, at its own pace. The archive publishes days once they are over, as Binance does, so
an archive started the same day as the exchange (or earlier) never serves an id the exchange
traded. (An archive started on a later day serves the exchange's days from the history, which
the exchange did not follow: start it with ``--end`` at the exchange's first day.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from binprice.markets import Market
from binprice.testing.generator import US_PER_MS, SymbolSpec, TradeGenerator, symbol_spec

#: The day the fixtures' trades were made (trade_combined.jsonl starts at its 04:13 UTC):
#: ``SymbolSpec.first_id`` is the history's first id of this day.
ANCHOR_DAY = date(2026, 5, 28)
#: The history's first day: no trade of the test market is older.
HISTORY_FROM = date(2017, 7, 14)
#: Trades a day of history has unless told otherwise: the archive server's default.
HISTORY_TRADES_PER_DAY = 1000
DAY_US = 86_400_000_000
#: The history's price swings around the spec's price by this share over a year.
PRICE_SWING = 0.2
DAYS_PER_YEAR = 365.25


def _midnight_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def day_offset(day: date, per_day: int) -> int:
    """How many history ids lie between the anchor day's first and ``day``'s first."""
    return (day - ANCHOR_DAY).days * per_day


def open_price(spec: SymbolSpec, day: date) -> int:
    """The day's first price (1e-8 units, on the tick): a function of the day alone."""
    phase = 2 * math.pi * (day - ANCHOR_DAY).days / DAYS_PER_YEAR
    price = spec.first_price * (1 + PRICE_SWING * math.sin(phase))
    return max(spec.tick, int(price) // spec.tick * spec.tick)


def day_spec(spec: SymbolSpec, day: date, per_day: int) -> SymbolSpec:
    """The spec of a history that begins on ``day``: its first ids and price there."""
    offset = day_offset(day, per_day)
    if spec.first_id + offset < 1 or spec.first_agg_id + offset < 1:
        raise ValueError(
            f"{per_day} trades a day reach below id 1 before {day}; trade fewer or start later"
        )
    return replace(
        spec,
        first_id=spec.first_id + offset,
        first_agg_id=spec.first_agg_id + offset,
        first_price=open_price(spec, day),
    )


def live_spec(spec: SymbolSpec, now_us: int, per_day: int = HISTORY_TRADES_PER_DAY) -> SymbolSpec:
    """The spec of an exchange starting at ``now_us``: the next id after the history's trades
    before that moment (each history trade is its own aggregate, so aggregate ids advance by
    as much)."""
    day = datetime.fromtimestamp(now_us / 1_000_000, UTC).date()
    start = day_spec(spec, day, per_day)
    into_day = (now_us - _midnight_us(day)) * per_day // DAY_US
    return replace(
        start, first_id=start.first_id + into_day, first_agg_id=start.first_agg_id + into_day
    )


def produce_day(generator: TradeGenerator, base: SymbolSpec, day: date, per_day: int) -> None:
    """Trade ``day`` of the history into ``generator`` (whose next id is the day's first):
    ``per_day`` trades from the day's own random streams and price, one per slot of the day,
    each its own order (so its own aggregate)."""
    generator.reseed(day.isoformat(), open_price(base, day), _midnight_us(day))
    midnight_ms = _midnight_us(day) // US_PER_MS
    day_ms = DAY_US // US_PER_MS
    for j in range(per_day):
        # One trade per slot (limit=1 cuts its order there), at a time the generator spreads
        # inside the slot: the end of the slot is `now`.
        slot_end_ms = midnight_ms + (j + 1) * day_ms // per_day - 1
        generator.produce(1, slot_end_ms * US_PER_MS, limit=1)


class History:
    """A symbol's history before the exchange started, a day at a time, for REST pages below
    the exchange's first id: the same trades the archive's files hold."""

    #: Days kept generated (a backfill walks forward, one or two days at a time).
    CACHED_DAYS = 4

    def __init__(self, seed: int, market: Market, per_day: int = HISTORY_TRADES_PER_DAY):
        self.seed, self.market, self.per_day = seed, market, per_day
        self._days: dict[tuple[str, date], TradeGenerator] = {}

    def first_id(self, symbol: str) -> int:
        """The history's first id: that of :data:`HISTORY_FROM` (none exist before it)."""
        return symbol_spec(symbol, self.market).first_id + day_offset(HISTORY_FROM, self.per_day)

    def first_agg_id(self, symbol: str) -> int:
        """The history's first aggregate id (each history trade is one aggregate)."""
        base = symbol_spec(symbol, self.market)
        return base.first_agg_id + day_offset(HISTORY_FROM, self.per_day)

    def day(self, symbol: str, day: date) -> TradeGenerator:
        """The generator holding ``day``'s history of ``symbol``."""
        key = (symbol, day)
        found = self._days.get(key)
        if found is None:
            base = symbol_spec(symbol, self.market)
            found = TradeGenerator(
                symbol, self.seed, spec=day_spec(base, day, self.per_day), market=self.market
            )
            produce_day(found, base, day, self.per_day)
            if len(self._days) >= self.CACHED_DAYS:
                self._days.pop(next(iter(self._days)))
            self._days[key] = found
        return found

    def rows(
        self, symbol: str, from_id: int, before_id: int, limit: int, *, microseconds: bool
    ) -> list[str]:
        """``historicalTrades`` rows of the history's trades with ``from_id <= id <
        before_id``, at most ``limit``, ascending."""
        unit = 1 if microseconds else US_PER_MS
        first = max(from_id, self.first_id(symbol))
        return self._walk(
            symbol,
            first,
            before_id,
            limit,
            anchor_id=symbol_spec(symbol, self.market).first_id,
            first_of=lambda g: g.first_id,
            rows_of=lambda g, lo, hi: [g.rest_row(i, unit) for i in range(lo, hi)],
        )

    def agg_rows(
        self, symbol: str, from_id: int, before_id: int, limit: int, *, microseconds: bool
    ) -> list[str]:
        """``aggTrades`` rows of the history with aggregate ids ``from_id <= a <
        before_id``, at most ``limit``, ascending."""
        first = max(from_id, self.first_agg_id(symbol))
        return self._walk(
            symbol,
            first,
            before_id,
            limit,
            anchor_id=symbol_spec(symbol, self.market).first_agg_id,
            first_of=lambda g: g.aggregates.first_id,
            rows_of=lambda g, lo, hi: g.agg_row_list(lo, hi, microseconds),
        )

    def _walk(
        self,
        symbol: str,
        from_id: int,
        before_id: int,
        limit: int,
        *,
        anchor_id: int,
        first_of: Callable[[TradeGenerator], int],
        rows_of: Callable[[TradeGenerator, int, int], list[str]],
    ) -> list[str]:
        """Rows from ``from_id`` on, a day's generator at a time: ``anchor_id`` is the id
        sequence's first on :data:`ANCHOR_DAY`, ``first_of`` a day's first id in it."""
        out: list[str] = []
        at = from_id
        while at < before_id and len(out) < limit:
            day = ANCHOR_DAY + timedelta(days=(at - anchor_id) // self.per_day)
            generator = self.day(symbol, day)
            lo = at - first_of(generator)
            hi = min(self.per_day, lo + limit - len(out), before_id - first_of(generator))
            out.extend(rows_of(generator, lo, hi))
            at = first_of(generator) + hi
        return out


__all__ = [
    "ANCHOR_DAY",
    "HISTORY_FROM",
    "HISTORY_TRADES_PER_DAY",
    "History",
    "day_offset",
    "day_spec",
    "live_spec",
    "open_price",
    "produce_day",
]
