"""Deterministic Spot trade generation with an exact record of everything produced.

A :class:`TradeGenerator` makes one symbol's trades: consecutive ids from a realistic base,
prices on the tick and quantities on the lot step (kept as integers in units of 1e-8, Binance's
8 decimals), non-decreasing trade times, and multi-fill orders whose fills share ``T`` and walk
away from the touch. The record is kept in compact arrays (25 bytes a trade) so a million-trade
benchmark does not need a gigabyte, and REST pages are cut from it, so REST serves exactly what
the stream carried (or skipped).
"""

from __future__ import annotations

import bisect
import random
import time
import zlib
from array import array
from dataclasses import dataclass
from decimal import Decimal

from binprice.binance import Trade, stream_name

#: Prices and quantities are integers in units of 1e-8 (Spot strings have 8 decimals).
UNITS_PER_ONE = 100_000_000
#: Share of orders that fill against a single resting order; the rest fill 2..MAX_FILLS.
SINGLE_FILL_SHARE = 0.7
MAX_FILLS = 5
#: Largest quantity of one fill, in lot steps (BTCUSDT: 0.02 BTC).
MAX_QTY_STEPS = 2000
#: Share of orders whose event time E is 1 ms after the trade time T (real frames: 0-3 ms).
LATE_EVENT_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Where a symbol's synthetic market starts; prices and sizes in 1e-8 units."""

    first_id: int
    first_price: int
    tick: int
    step: int


#: The two fixture markets continue where trade_combined.jsonl starts.
KNOWN_SPECS = {
    "BTCUSDT": SymbolSpec(6329162611, 7310930 * 10**6, 10**6, 10**3),
    "ETHUSDT": SymbolSpec(4049338706, 197994 * 10**6, 10**6, 10**4),
}


def symbol_spec(symbol: str) -> SymbolSpec:
    """Known spec, or one derived from a stable hash of the name (not ``hash()``: salted)."""
    known = KNOWN_SPECS.get(symbol)
    if known is not None:
        return known
    digest = zlib.crc32(symbol.encode())
    tick = 10**4  # 0.0001
    return SymbolSpec(
        first_id=10**7 + digest % 10**9,
        first_price=(1000 + digest % 5_000_000) * tick,
        tick=tick,
        step=10**6,  # 0.01
    )


def format_units(units: int) -> str:
    """1e-8 units → Binance's 8-decimal string (``7310930000000`` → ``"73109.30000000"``)."""
    return f"{units // UNITS_PER_ONE}.{units % UNITS_PER_ONE:08d}"


def wall_clock_ms() -> int:
    """Real UTC epoch ms: trade times are wall clock so consumers can measure latency."""
    return time.time_ns() // 1_000_000


class TradeGenerator:
    """One symbol's deterministic trade stream and its complete record."""

    def __init__(self, symbol: str, seed: int = 0, spec: SymbolSpec | None = None) -> None:
        self.symbol = symbol.upper()
        self.stream = stream_name(self.symbol)
        self.spec = spec or symbol_spec(self.symbol)
        self._rng = random.Random(f"{seed}:{self.symbol}")
        self._mid = self.spec.first_price
        self._last_time = 0
        self._prices = array("q")
        self._quantities = array("q")
        self._times = array("q")
        self._makers = bytearray()
        #: Indexes of trades REST must not serve (see Faults.lose_next).
        self.lost: set[int] = set()
        # One prefix per symbol, so building a frame is a single format call.
        self._frame_prefix = '{"e":"trade","E":%d,"s":"' + self.symbol + '","t":%d,'

    def __len__(self) -> int:
        return len(self._times)

    @property
    def first_id(self) -> int:
        return self.spec.first_id

    @property
    def next_id(self) -> int:
        return self.spec.first_id + len(self._times)

    def produce(self, count: int, now_ms: int) -> list[bytes]:
        """Make ``count`` more trades at time ``now_ms``; return their raw ``@trade`` payloads.

        Whole orders are generated, except that the last may be cut short at ``count``.
        """
        payloads: list[bytes] = []
        rng = self._rng
        spec = self.spec
        trade_time = max(now_ms, self._last_time)
        self._last_time = trade_time
        while len(payloads) < count:
            # random() is several times cheaper than randint(), and this runs per trade.
            buyer_is_maker = rng.random() < 0.5
            fills = (
                1 if rng.random() < SINGLE_FILL_SHARE else 2 + int(rng.random() * (MAX_FILLS - 1))
            )
            event_time = trade_time + (rng.random() < LATE_EVENT_SHARE)
            self._mid = max(spec.tick, self._mid + (int(rng.random() * 5) - 2) * spec.tick)
            price = self._mid
            # A buyer aggressor lifts asks upwards, a seller hits bids downwards.
            direction = -spec.tick if buyer_is_maker else spec.tick
            for _ in range(min(fills, count - len(payloads))):
                quantity = (1 + int(rng.random() * MAX_QTY_STEPS)) * spec.step
                payloads.append(
                    self._record(price, quantity, trade_time, event_time, buyer_is_maker)
                )
                if rng.random() < 0.5:
                    price = max(spec.tick, price + direction)
        return payloads

    def _record(
        self, price: int, quantity: int, trade_time: int, event_time: int, m: bool
    ) -> bytes:
        trade_id = self.spec.first_id + len(self._times)
        self._prices.append(price)
        self._quantities.append(quantity)
        self._times.append(trade_time)
        self._makers.append(m)
        return self._format(trade_id, price, quantity, trade_time, event_time, m)

    def _format(self, trade_id: int, price: int, qty: int, t: int, e: int, m: bool) -> bytes:
        return (
            self._frame_prefix
            % (e, trade_id)
            + f'"p":"{price // UNITS_PER_ONE}.{price % UNITS_PER_ONE:08d}",'
            f'"q":"{qty // UNITS_PER_ONE}.{qty % UNITS_PER_ONE:08d}",'
            f'"T":{t},"m":{"true" if m else "false"},"M":true}}'
        ).encode()

    def payload(self, index: int, event_time: int | None = None) -> bytes:
        """Raw ``@trade`` payload of recorded trade ``index`` (0-based); ``E`` defaults to ``T``."""
        t = self._times[index]
        return self._format(
            self.first_id + index,
            self._prices[index],
            self._quantities[index],
            t,
            t if event_time is None else event_time,
            bool(self._makers[index]),
        )

    # --- the record ------------------------------------------------------------------------

    def trade(self, index: int) -> Trade:
        """Recorded trade ``index`` (0-based) as the product's :class:`Trade`."""
        return Trade(
            self.symbol,
            self.spec.first_id + index,
            Decimal(format_units(self._prices[index])),
            Decimal(format_units(self._quantities[index])),
            self._times[index],
            bool(self._makers[index]),
        )

    def trades(self, start: int = 0, stop: int | None = None) -> list[Trade]:
        """Recorded trades with indexes ``start`` ≤ i < ``stop``."""
        return [self.trade(i) for i in range(*slice(start, stop).indices(len(self)))]

    def index_of_time(self, time_ms: int) -> int:
        """Index of the first trade with ``T >= time_ms`` (times never decrease)."""
        return bisect.bisect_left(self._times, time_ms)

    def rest_rows(self, start: int, stop: int) -> bytes:
        """JSON body of ``trades``/``historicalTrades`` for indexes ``start`` ≤ i < ``stop``."""
        rows = []
        lost = self.lost
        for i in range(max(0, start), min(stop, len(self))):
            if i in lost:
                continue
            price, quantity = self._prices[i], self._quantities[i]
            rows.append(
                f'{{"id":{self.spec.first_id + i},"price":"{format_units(price)}",'
                f'"qty":"{format_units(quantity)}",'
                f'"quoteQty":"{format_units(price * quantity // UNITS_PER_ONE)}",'
                f'"time":{self._times[i]},'
                f'"isBuyerMaker":{"true" if self._makers[i] else "false"},"isBestMatch":true}}'
            )
        return ("[" + ",".join(rows) + "]").encode()

    def agg_rows(self, start: int, limit: int, stop: int | None = None) -> bytes:
        """``aggTrades`` body from index ``start``: fills sharing T, price and side merge.

        Simplification: an aggregate's id ``a`` is its first trade id, so ``fromId`` on
        aggTrades addresses the same line as on historicalTrades.
        """
        rows: list[str] = []
        i, end = max(0, start), len(self) if stop is None else min(stop, len(self))
        while i < end and len(rows) < limit:
            j, quantity = i, 0
            key = (self._times[i], self._prices[i], self._makers[i])
            while j < end and (self._times[j], self._prices[j], self._makers[j]) == key:
                quantity += self._quantities[j]
                j += 1
            first = self.spec.first_id + i
            rows.append(
                f'{{"a":{first},"p":"{format_units(key[1])}","q":"{format_units(quantity)}",'
                f'"f":{first},"l":{first + j - i - 1},"T":{key[0]},'
                f'"m":{"true" if key[2] else "false"},"M":true}}'
            )
            i = j
        return ("[" + ",".join(rows) + "]").encode()
