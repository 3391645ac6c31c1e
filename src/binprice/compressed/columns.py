"""Integer columns → blocks, fast: the codec's blocks for trades already parsed. Pure.

`codec.encode_blocks` takes trades as decimal texts and decides every block trade by trade
(about 14 µs a trade), which is right for compressing rows but slower than PostgreSQL storing
the rows, and `binprice import` of a closed month must beat a bare COPY. The import already has
its trades as integers in id order (`Columns`: what it parsed from the CSV), so here a block is
made per minute (dense) or per 1,000 trades of a day (sparse) with list operations that run in
C: the price scale is the gcd's powers of ten, the deltas one `map`, the bounds a `max`.

`encode_columns` returns exactly the blocks `encode_blocks` returns for the same trades
(tests/test_import_blocks.py checks it): where a block would need one of the codec's rarer
cuts (an overflowing delta or integer, an id span beyond int4) or the times are not in id order,
that minute or day is handed to `encode_blocks` itself.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass

from binprice.compressed.codec import (
    DAY_MS,
    INT4_MAX,
    INT8_MAX,
    MARKET_SPOT,
    MINUTE_MS,
    SPARSE_BLOCK_TRADES,
    Block,
    CodecTrade,
    encode_blocks,
)

__all__ = ["Columns", "encode_columns", "fixed_text"]


@dataclass(frozen=True, slots=True)
class Columns:
    """One symbol's consecutive trades in id order, as integers."""

    ids: list[int]
    #: Epoch milliseconds.
    times: list[int]
    #: Price and quantity times 10^digits: the decimal text with its point removed.
    prices: list[int]
    qtys: list[int]
    #: is_buyer_maker, '1' or '0' per trade (the codec's `side`).
    side: str
    price_digits: int
    qty_digits: int

    def __len__(self) -> int:
        return len(self.ids)

    def cut(self, start: int, end: int) -> Columns:
        """Trades `start` to `end` (excluded)."""
        return Columns(
            self.ids[start:end],
            self.times[start:end],
            self.prices[start:end],
            self.qtys[start:end],
            self.side[start:end],
            self.price_digits,
            self.qty_digits,
        )

    def spans(self, length_ms: int) -> Iterator[Columns]:
        """The trades cut where the time enters another UTC minute (`length_ms` = a minute)
        or day; the times must not decrease."""
        times, start, count = self.times, 0, len(self.times)
        while start < count:
            limit = (times[start] // length_ms + 1) * length_ms
            lo, hi = start + 1, count
            while lo < hi:  # binary search: a minute holds hundreds of trades
                mid = (lo + hi) // 2
                if times[mid] < limit:
                    lo = mid + 1
                else:
                    hi = mid
            yield self.cut(start, lo)
            start = lo

    def trades(self) -> list[CodecTrade]:
        """The trades as the codec takes them (decimal texts)."""
        pd, qd = self.price_digits, self.qty_digits
        return [
            (i, fixed_text(p, pd), fixed_text(q, qd), t, s == "1")
            for i, p, q, t, s in zip(
                self.ids, self.prices, self.qtys, self.times, self.side, strict=True
            )
        ]


def fixed_text(value: int, digits: int) -> str:
    """`value` / 10^digits with `digits` decimals, as PostgreSQL prints such a numeric."""
    if value < 0:
        return "-" + fixed_text(-value, digits)
    if digits == 0:
        return str(value)
    text = str(value).rjust(digits + 1, "0")
    return f"{text[:-digits]}.{text[-digits:]}"


def encode_columns(
    symbol: str, columns: Columns, *, dense: bool, market: int = MARKET_SPOT
) -> list[Block]:
    """`columns` as blocks, the same as `encode_blocks(symbol, columns.trades(), dense=…)`."""
    times = columns.times
    if not all(map(operator.le, times, times[1:])):  # the codec orders by time, then id
        return encode_blocks(symbol, columns.trades(), dense=dense, market=market)
    blocks: list[Block] = []
    for span in columns.spans(MINUTE_MS if dense else DAY_MS):
        count = len(span) if dense else SPARSE_BLOCK_TRADES
        parts = [span.cut(i, i + count) for i in range(0, len(span), count)]
        made = [_block(market, symbol, part) for part in parts]
        if all(made):
            blocks.extend(b for b in made if b is not None)
        else:  # a cut inside the span: the codec decides where
            blocks.extend(encode_blocks(symbol, span.trades(), dense=dense, market=market))
    return blocks


def _zeros(value: int, limit: int) -> int:
    """Trailing decimal zeros of `value`, at most `limit`."""
    zeros = 0
    while zeros < limit and value % 10 == 0:
        value //= 10
        zeros += 1
    return zeros


def _unscaled(values: list[int], zeros: int) -> list[int]:
    """`values` divided by 10^zeros (exact: `zeros` trailing zeros are common to all), the
    power computed once (per value it doubles the time)."""
    if not zeros:
        return values
    divisor = 10**zeros
    return [value // divisor for value in values]


def _block(market: int, symbol: str, part: Columns) -> Block | None:
    """`part` as one block, None if the codec would cut it (its integers would overflow)."""
    ids, times = part.ids, part.times
    if ids[-1] - ids[0] > INT4_MAX:
        return None
    pz = _zeros(math.gcd(*part.prices), part.price_digits)
    qz = _zeros(math.gcd(*part.qtys), part.qty_digits)
    prices = _unscaled(part.prices, pz)
    qtys = _unscaled(part.qtys, qz)
    deltas = [0, *map(operator.sub, prices[1:], prices[:-1])]
    if (
        max(prices) > INT8_MAX
        or max(qtys) > INT8_MAX
        or max(deltas) > INT4_MAX
        or -min(deltas) > INT4_MAX
    ):
        return None
    return Block(
        market=market,
        symbol=symbol,
        first_ms=times[0],
        first_id=ids[0],
        last_id=ids[-1],
        trades=len(ids),
        last_ms=times[-1],
        base_price=prices[0],
        price_scale=part.price_digits - pz,
        qty_scale=part.qty_digits - qz,
        price_digits=part.price_digits,
        qty_digits=part.qty_digits,
        ids=None if ids[-1] - ids[0] == len(ids) - 1 else [i - ids[0] for i in ids],
        side=part.side,
        ms=[0, *map(operator.sub, times[1:], times[:-1])],
        price=deltas,
        qty=qtys,
    )
