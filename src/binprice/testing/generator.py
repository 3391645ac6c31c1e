"""Deterministic Spot trade generation with an exact record of everything produced.

A :class:`TradeGenerator` makes one symbol's market out of taker orders: each order fills
against one or more resting orders at prices that walk away from the touch, every fill a trade
with the next id, all fills of an order sharing the trade time ``T`` (as on Binance, where one
order matches at one instant). Fills of one order at one price form an aggregate trade with an
id of its own (``@aggTrade``, REST ``aggTrades``).

What is traded (ids, prices on the tick, quantities on the lot step, sides, aggregates) comes
from one random stream seeded by ``(seed, symbol)`` and does not depend on when or in what
batches trades are asked for: orders are always generated whole. When they happen (trade times
spread over the interval since the previous batch, in microseconds, and event times) comes
from a second stream, so a paced and a full-speed run of one seed trade the same market.

The record is kept in compact arrays (25 bytes a trade, 16 an aggregate) so a million-trade
benchmark does not need a gigabyte, and REST pages are cut from it, so REST serves exactly
what the stream carried (or skipped). Prices and quantities are integers in units of 1e-8.
"""

from __future__ import annotations

import bisect
import random
import time
import zlib
from array import array
from dataclasses import dataclass
from decimal import Decimal

from binprice.exchange.protocol import WireAggTrade, WireTrade, agg_stream_name, stream_name
from binprice.markets import Market
from binprice.testing.agg import AggregateBook

#: Prices and quantities are integers in units of 1e-8 (Spot strings have 8 decimals).
UNITS_PER_ONE = 100_000_000
US_PER_MS = 1000
#: Share of orders that fill against a single resting order; the rest fill 2..MAX_FILLS.
SINGLE_FILL_SHARE = 0.7
MAX_FILLS = 5
#: Largest quantity of one fill, in lot steps (BTCUSDT: 0.02 BTC).
MAX_QTY_STEPS = 2000
#: Share of orders whose event time E trails the trade time T by about a millisecond; the
#: others trail by under EVENT_DELAY_US (real frames: E - T of 0 to a few ms).
LATE_EVENT_SHARE = 0.2
EVENT_DELAY_US = 300


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Where a symbol's synthetic market starts; prices and sizes in 1e-8 units."""

    first_id: int
    first_price: int
    tick: int
    step: int
    #: Aggregate ids are a separate, smaller sequence (several trades per aggregate).
    first_agg_id: int


#: The two fixture markets continue where trade_combined.jsonl starts.
KNOWN_SPECS = {
    "BTCUSDT": SymbolSpec(6329162611, 7310930 * 10**6, 10**6, 10**3, 3612409850),
    "ETHUSDT": SymbolSpec(4049338706, 197994 * 10**6, 10**6, 10**4, 2459921307),
}


#: USD-M contracts trade on a coarser grid than Spot: BTCUSDT's tick is 0.1, its step 0.001.
USDM_TICK, USDM_STEP = 10**7, 10**5
#: COIN-M quantities are whole contracts (BTCUSD_PERP: 100 USD each), prices on a 0.1 tick.
COINM_TICK, COINM_STEP = 10**7, UNITS_PER_ONE
#: What one COIN-M contract is worth in the quote asset (BTC contracts: 100 USD, others: 10).
COINM_CONTRACT_SIZE = {"BTC": 100}
COINM_DEFAULT_CONTRACT_SIZE = 10


def symbol_spec(symbol: str, market: Market = Market.SPOT) -> SymbolSpec:
    """Known spec, or one derived from a stable hash of the name (not ``hash()``: salted)."""
    if market is not Market.SPOT:
        return _futures_spec(symbol, market)
    known = KNOWN_SPECS.get(symbol)
    if known is not None:
        return known
    digest = zlib.crc32(symbol.encode())
    tick = 10**4  # 0.0001
    first_id = 10**7 + digest % 10**9
    return SymbolSpec(
        first_id=first_id,
        first_price=(1000 + digest % 5_000_000) * tick,
        tick=tick,
        step=10**6,  # 0.01
        first_agg_id=first_id // 2,
    )


def _futures_spec(symbol: str, market: Market) -> SymbolSpec:
    """A futures contract trades near its Spot pair, on the market's grid, with its own ids."""
    pair = symbol.partition("_")[0]
    spot = symbol_spec(pair if market is Market.USDM else pair + "T")
    tick, step = (USDM_TICK, USDM_STEP) if market is Market.USDM else (COINM_TICK, COINM_STEP)
    digest = zlib.crc32(f"{market.value}:{symbol}".encode())
    first_id = 10**8 + digest % 10**9
    return SymbolSpec(
        first_id=first_id,
        first_price=max(tick, spot.first_price // tick * tick),
        tick=tick,
        step=step,
        first_agg_id=first_id // 2,
    )


def contract_size(symbol: str) -> int:
    """Quote-asset value of one COIN-M contract of ``symbol``."""
    base = symbol.partition("_")[0].removesuffix("USD")
    return COINM_CONTRACT_SIZE.get(base, COINM_DEFAULT_CONTRACT_SIZE)


def decimals_of(units: int) -> int:
    """Decimals a grid of ``units`` (1e-8) needs: 10**7 → 1, 10**8 → 0, 10**3 → 5."""
    digits = 8
    while digits and units % 10 == 0:
        units //= 10
        digits -= 1
    return digits


def format_grid(units: int, decimals: int) -> str:
    """1e-8 units → a decimal string with ``decimals`` places (futures' shorter strings)."""
    if decimals >= 8:
        return format_units(units)
    whole, frac = divmod(units, UNITS_PER_ONE)
    if decimals == 0:
        return str(whole)
    return f"{whole}.{frac // 10 ** (8 - decimals):0{decimals}d}"


def format_units(units: int) -> str:
    """1e-8 units → Binance's 8-decimal string (``7310930000000`` → ``"73109.30000000"``)."""
    return f"{units // UNITS_PER_ONE}.{units % UNITS_PER_ONE:08d}"


def wall_clock_us() -> int:
    """Real UTC epoch µs: trade times are wall clock so consumers can measure latency."""
    return time.time_ns() // 1000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _bool(value: int) -> str:
    return "true" if value else "false"


class TradeGenerator:
    """One symbol's deterministic trade stream and its complete record."""

    def __init__(
        self,
        symbol: str,
        seed: int = 0,
        spec: SymbolSpec | None = None,
        market: Market = Market.SPOT,
    ) -> None:
        self.symbol = symbol.upper()
        self.market = market
        self.stream = stream_name(self.symbol)
        self.agg_stream = agg_stream_name(self.symbol)
        self.spec = spec or symbol_spec(self.symbol, market)
        # A futures series is another market than its Spot pair: its own random streams.
        name = self.symbol if market is Market.SPOT else f"{market.value}:{self.symbol}"
        self._stream_key = f"{seed}:{name}"
        self._rng = random.Random(self._stream_key)
        self._time_rng = random.Random(f"{self._stream_key}:time")
        futures = market is not Market.SPOT
        #: Price and quantity strings: Spot always has 8 decimals, futures the grid's.
        self._price_decimals = decimals_of(self.spec.tick) if futures else 8
        self._qty_decimals = decimals_of(self.spec.step) if futures else 8
        self._mid = self.spec.first_price
        self._clock_us: int | None = None
        self._last_time = 0
        self._prices = array("q")
        self._quantities = array("q")
        self._times = array("q")  # µs
        self._makers = bytearray()
        #: The aggregate trades, by the index of their first trade.
        self.aggregates = AggregateBook(self.spec.first_agg_id)
        #: Indexes of trades REST must not serve (see Faults.lose_next).
        self.lost: set[int] = set()
        #: Futures: indexes of trades that are not market trades, with their ``X``
        #: (Faults.non_market_next); they are in ``lost`` too.
        self.non_market: dict[int, str] = {}
        # One prefix per symbol, so building a frame is a single format call.
        if futures:
            # Futures frames put T before s, carry X and no M (docs/futures.md §3).
            self._frame_prefix = '{"e":"trade","E":%d,"T":%d,"s":"' + self.symbol + '","t":%d,'
            self._frame_suffix = '"X":"MARKET","m":%s}'
        else:
            self._frame_prefix = '{"e":"trade","E":%d,"s":"' + self.symbol + '","t":%d,'
            self._frame_suffix = ""

    def __len__(self) -> int:
        return len(self._times)

    def reseed(self, period: str, price: int, since_us: int) -> None:
        """From now on, trade from the random streams of ``period`` (e.g. a day), at ``price``,
        at times after ``since_us``: what follows no longer depends on what came before
        (testing/timeline.py)."""
        self._rng = random.Random(f"{self._stream_key}:{period}")
        self._time_rng = random.Random(f"{self._stream_key}:{period}:time")
        self._mid = price
        self._clock_us = since_us

    @property
    def first_id(self) -> int:
        return self.spec.first_id

    @property
    def next_id(self) -> int:
        return self.spec.first_id + len(self._times)

    def produce(
        self, count: int, now_us: int, *, limit: int | None = None, since_us: int | None = None
    ) -> list[bytes]:
        """Make at least ``count`` more trades, whole orders, at most ``limit``; return them.

        The result is the new trades' raw ``@trade`` payloads (times in ms). Their trade times
        spread over the interval since the previous call (or since ``since_us``, if later: a
        paced producer's last tick, so a rare symbol's trade is not dated back to its previous
        one), ending at ``now_us``; an order cut by ``limit`` ends there (its remaining fills
        never happen).
        """
        payloads: list[bytes] = []
        if count <= 0:
            return payloads
        rng, time_rng, spec = self._rng, self._time_rng, self.spec
        window_start = max(self._last_time, now_us if self._clock_us is None else self._clock_us)
        if since_us is not None:
            window_start = max(window_start, min(since_us, now_us))
        span = max(0, now_us - window_start)
        self._clock_us = now_us
        cap = count + MAX_FILLS if limit is None else limit
        while len(payloads) < count and len(payloads) < cap:
            # random() is several times cheaper than randint(), and this runs per trade.
            buyer_is_maker = rng.random() < 0.5
            fills = (
                1 if rng.random() < SINGLE_FILL_SHARE else 2 + int(rng.random() * (MAX_FILLS - 1))
            )
            self._mid = max(spec.tick, self._mid + (int(rng.random() * 5) - 2) * spec.tick)
            price = self._mid
            # A buyer aggressor lifts asks upwards, a seller hits bids downwards.
            direction = -spec.tick if buyer_is_maker else spec.tick
            quantities, prices = [], []
            for _ in range(fills):
                quantities.append((1 + int(rng.random() * MAX_QTY_STEPS)) * spec.step)
                prices.append(price)
                if rng.random() < 0.5:
                    price = max(spec.tick, price + direction)
            # Orders sit at increasing points of the window, jittered within their share.
            offset = int(span * (len(payloads) + time_rng.random()) / count)
            trade_time = max(self._last_time, min(now_us, window_start + offset))
            self._last_time = trade_time
            delay = (US_PER_MS if time_rng.random() < LATE_EVENT_SHARE else 0) + int(
                time_rng.random() * EVENT_DELAY_US
            )
            event_time = max(trade_time, min(trade_time + delay, now_us))
            previous_price = None
            for price, quantity in zip(prices, quantities, strict=True):
                if len(payloads) >= cap:
                    break
                if price != previous_price:
                    self.aggregates.open(len(self._times), event_time)
                    previous_price = price
                payloads.append(
                    self._record(price, quantity, trade_time, event_time, buyer_is_maker)
                )
        return payloads

    def _record(
        self, price: int, quantity: int, trade_time: int, event_time: int, m: bool
    ) -> bytes:
        trade_id = self.spec.first_id + len(self._times)
        self._prices.append(price)
        self._quantities.append(quantity)
        self._times.append(trade_time)
        self._makers.append(m)
        return self._format(
            trade_id, price, quantity, trade_time // US_PER_MS, event_time // US_PER_MS, m=m
        )

    def _format(
        self, trade_id: int, price: int, qty: int, t: int, e: int, *, m: bool, kind: str = ""
    ) -> bytes:
        if self.market is not Market.SPOT:
            suffix = self._frame_suffix % _bool(m)
            if kind:  # a non-market trade (Faults.non_market_next)
                suffix = suffix.replace('"MARKET"', f'"{kind}"')
            return (
                self._frame_prefix
                % (e, t, trade_id)
                + f'"p":"{format_grid(price, self._price_decimals)}",'
                f'"q":"{format_grid(qty, self._qty_decimals)}",' + suffix
            ).encode()
        return (
            self._frame_prefix
            % (e, trade_id)
            + f'"p":"{price // UNITS_PER_ONE}.{price % UNITS_PER_ONE:08d}",'
            f'"q":"{qty // UNITS_PER_ONE}.{qty % UNITS_PER_ONE:08d}",'
            f'"T":{t},"m":{_bool(m)},"M":true}}'
        ).encode()

    def price_text(self, units: int) -> str:
        return format_grid(units, self._price_decimals)

    def qty_text(self, units: int) -> str:
        return format_grid(units, self._qty_decimals)

    def payload(self, index: int, *, microseconds: bool = False) -> bytes:
        """Raw ``@trade`` payload of recorded trade ``index`` (0-based), as it was sent."""
        t, e = self._times[index], self.aggregates.event_time(self.aggregates.of_trade(index))
        unit = 1 if microseconds else US_PER_MS
        return self._format(
            self.first_id + index,
            self._prices[index],
            self._quantities[index],
            t // unit,
            e // unit,
            m=bool(self._makers[index]),
            kind=self.non_market.get(index, ""),
        )

    def agg_payload(self, agg: int, *, microseconds: bool = False) -> bytes:
        """Raw ``@aggTrade`` payload of aggregate ``agg`` (0-based index, not its id)."""
        start, stop = self.aggregates.trades_of(agg, len(self))
        unit = 1 if microseconds else US_PER_MS
        return (
            f'{{"e":"aggTrade","E":{self.aggregates.event_time(agg) // unit},"s":"{self.symbol}",'
            + self._agg_fields(agg, start, stop, unit)
            + "}"
        ).encode()

    def _agg_fields(self, agg: int, start: int, stop: int, unit: int) -> str:
        quantity = sum(self._quantities[start:stop])
        # Futures aggregates have no "M" (docs/futures.md §3).
        best_match = ',"M":true' if self.market is Market.SPOT else ""
        return (
            f'"a":{self.aggregates.first_id + agg},"p":"{self.price_text(self._prices[start])}",'
            f'"q":"{self.qty_text(quantity)}","f":{self.first_id + start},'
            f'"l":{self.first_id + stop - 1},"T":{self._times[start] // unit},'
            f'"m":{_bool(self._makers[start])}{best_match}'
        )

    def agg(self, agg: int) -> WireAggTrade:
        """Recorded aggregate ``agg`` (0-based index) as the product's :class:`WireAggTrade`."""
        start, stop = self.aggregates.trades_of(agg, len(self))
        return WireAggTrade(
            self.symbol,
            self.aggregates.first_id + agg,
            Decimal(format_units(self._prices[start])),
            Decimal(format_units(sum(self._quantities[start:stop]))),
            self.first_id + start,
            self.first_id + stop - 1,
            self._times[start] // US_PER_MS,
            bool(self._makers[start]),
        )

    # --- the record ------------------------------------------------------------------------

    def trade(self, index: int) -> WireTrade:
        """Recorded trade ``index`` (0-based) as the product's :class:`WireTrade`."""
        return WireTrade(
            self.symbol,
            self.spec.first_id + index,
            Decimal(format_units(self._prices[index])),
            Decimal(format_units(self._quantities[index])),
            self._times[index] // US_PER_MS,
            bool(self._makers[index]),
        )

    def trades(self, start: int = 0, stop: int | None = None) -> list[WireTrade]:
        """Recorded trades with indexes ``start`` ≤ i < ``stop``."""
        return [self.trade(i) for i in range(*slice(start, stop).indices(len(self)))]

    def time_us(self, index: int) -> int:
        """WireTrade time of recorded trade ``index`` in µs (the archives' unit since 2025)."""
        return self._times[index]

    def index_of_time_us(self, time_us: int) -> int:
        """Index of the first trade with ``T >= time_us`` (times never decrease)."""
        return bisect.bisect_left(self._times, time_us)

    def index_of_time(self, time_ms: int) -> int:
        """Index of the first trade with ``T >= time_ms`` in ms."""
        return self.index_of_time_us(time_ms * US_PER_MS)

    def rest_rows(
        self, start: int, stop: int, *, microseconds: bool = False, limit: int | None = None
    ) -> bytes:
        """JSON body of ``trades``/``historicalTrades`` for indexes ``start`` ≤ i < ``stop``.

        With ``limit``, ``stop`` is ignored: the first ``limit`` trades the exchange has from
        ``start`` on, skipping lost ones, as Binance's ``fromId`` does past ids it lacks.
        """
        rows: list[str] = []
        lost = self.lost
        unit = 1 if microseconds else US_PER_MS
        end = len(self) if limit is not None else min(stop, len(self))
        for i in range(max(0, start), end):
            if i in lost:
                continue
            if limit is not None and len(rows) >= limit:
                break
            rows.append(self.rest_row(i, unit))
        return ("[" + ",".join(rows) + "]").encode()

    def rest_row(self, i: int, unit: int = US_PER_MS) -> str:
        """One ``trades``/``historicalTrades`` row in the market's shape (docs/futures.md §4);
        ``unit`` 1 gives times in µs."""
        price, quantity = self._prices[i], self._quantities[i]
        head = (
            f'{{"id":{self.spec.first_id + i},"price":"{self.price_text(price)}",'
            f'"qty":"{self.qty_text(quantity)}",'
        )
        tail = f'"time":{self._times[i] // unit},"isBuyerMaker":{_bool(self._makers[i])}'
        if self.market is Market.COINM:
            # Quantity in contracts; baseQty = contracts * contract size / price.
            base = quantity * contract_size(self.symbol) * UNITS_PER_ONE // price
            return head + f'"baseQty":"{format_units(base)}",' + tail + "}"
        quote = format_units(price * quantity // UNITS_PER_ONE)
        if self.market is Market.USDM:
            return head + f'"quoteQty":"{quote}",' + tail + ',"isRPITrade":false}'
        return head + f'"quoteQty":"{quote}",' + tail + ',"isBestMatch":true}'

    def base_quantity(self, index: int) -> Decimal:
        """COIN-M: the base-asset quantity of trade ``index`` (the archives' ``base_qty``)."""
        price, quantity = self._prices[index], self._quantities[index]
        return Decimal(format_units(quantity * contract_size(self.symbol) * UNITS_PER_ONE // price))

    def agg_rows(self, first: int, stop: int, *, microseconds: bool = False) -> bytes:
        """``aggTrades`` body for aggregates ``first`` ≤ k < ``stop`` (indexes, not ids).

        Trades lost for good (``Faults.lose_next``) are left out of their aggregate, and an
        aggregate with nothing left is left out: the exchange never had those ids.
        """
        return ("[" + ",".join(self.agg_row_list(first, stop, microseconds)) + "]").encode()

    def agg_row_list(self, first: int, stop: int, microseconds: bool = False) -> list[str]:
        """The rows of :meth:`agg_rows`, each a JSON object."""
        rows: list[str] = []
        unit = 1 if microseconds else US_PER_MS
        for agg in range(max(0, first), min(stop, len(self.aggregates))):
            start, end = self.aggregates.trades_of(agg, len(self))
            if self.lost:
                kept = [i for i in range(start, end) if i not in self.lost]
                if not kept:
                    continue
                start, end = kept[0], kept[-1] + 1
            rows.append("{" + self._agg_fields(agg, start, end, unit) + "}")
        return rows
