"""Trades ⇄ blocks of `trade_blocks`: the compressed-month codec, pure (no I/O, no clock).

A block holds one symbol's trades as column arrays (docs/storage-design.md, "Recommended
layout"); PostgreSQL then compresses each block row as a whole (pglz, or lz4). This module
decides where blocks start and end and what each array holds; `binprice.db.blocks` stores and
reads them.

**A trade** here is a plain tuple `(trade_id, price, quantity, ms, is_buyer_maker)`: the price
and quantity as the exact decimal text PostgreSQL prints for the stored `numeric`
(`73109.30000000`), the time as epoch milliseconds. Text in, the same text out: no `Decimal`
arithmetic and no datetimes on the hot path, which is what lets `export` decode a million
trades a second (`binprice.db.blocks` makes `Decimal`s and datetimes where a reader needs them).

**The block rule** (per symbol and UTC day, `dense` chosen by `is_dense` from the day's
count: docs/storage-design.md measured why a day, not the month):

- dense (a busy symbol-day, ≥ `DENSE_TRADES_PER_MINUTE` on average): one block per UTC
  minute;
- sparse: blocks of up to `SPARSE_BLOCK_TRADES` trades that never cross a UTC day;
- in both, a block is also cut before a trade whose decimals have another number of digits
  (`73109.3` and `73109.30000000` are different texts), or that would overflow the block's
  integers: a price delta or time delta beyond int4, a scaled price or quantity beyond int8,
  an id more than int4 above the block's lowest. Nothing is ever coded lossily: a trade that
  alone cannot be coded (a quantity beyond int8 at its own scale) raises `UnencodableTrade`.

**The columns**: trades are ordered by (time, id) (Binance's ids grow with time, so this is id
order); `first_id`/`last_id` the lowest and highest id; `ids` the offsets from `first_id`,
None when trade i has id `first_id + i`; `ms` the milliseconds since the previous trade (the
first: 0, its time is `first_ms`); the block's price scale is the fewest decimals that hold
every price exactly, `base_price` the first price at that scale, `price` the deltas from the
previous trade (first 0); `qty` the quantities at their own block scale; `price_digits` and
`qty_digits` the texts' decimals, restored by padding; `side` one '0'/'1' per trade.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter, sub

from binprice.markets import Market

__all__ = [
    "DENSE_TRADES_PER_MINUTE",
    "MARKET_COINM",
    "MARKET_SPOT",
    "MARKET_USDM",
    "SPARSE_BLOCK_TRADES",
    "Block",
    "CodecTrade",
    "UnencodableTrade",
    "decode_block",
    "decode_blocks",
    "encode_blocks",
    "is_dense",
    "scaled_text",
]

#: The `market` of a block: Binance Spot, USD-M futures, COIN-M futures (`Market.number`, the
#: one mapping).
MARKET_SPOT, MARKET_USDM, MARKET_COINM = (
    m.number for m in (Market.SPOT, Market.USDM, Market.COINM)
)
#: A symbol-month averaging at least this many trades a minute gets minute blocks: a block
#: row's fixed part (~60 bytes) is then under ~1 byte a trade.
DENSE_TRADES_PER_MINUTE = 64
#: A sparse symbol-month's blocks hold up to this many trades (docs/storage-design.md: ~10
#: bytes a trade for one trade a minute, and `at` reads one or two small blocks).
SPARSE_BLOCK_TRADES = 1000
MINUTE_MS = 60_000
DAY_MS = 86_400_000
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1

_POWERS = tuple(10**k for k in range(40))

#: (trade_id, price text, quantity text, epoch ms, is_buyer_maker)
CodecTrade = tuple[int, str, str, int, bool]


class UnencodableTrade(ValueError):
    """A trade whose price or quantity does not fit int8 even alone at its own scale."""


@dataclass(frozen=True, slots=True)
class Block:
    """One row of `trade_blocks`, in its column order; the two times as epoch milliseconds
    (`first_ts`, `last_ts` in the table)."""

    market: int
    symbol: str
    first_ms: int
    first_id: int
    last_id: int
    trades: int
    last_ms: int
    base_price: int
    price_scale: int
    qty_scale: int
    price_digits: int
    qty_digits: int
    ids: Sequence[int] | None
    side: str
    ms: Sequence[int]
    price: Sequence[int]
    qty: Sequence[int]


def is_dense(trades: int, minutes: int) -> bool:
    """Whether a symbol's `trades` over `minutes` minutes (a UTC day's 1,440) get minute
    blocks."""
    return trades >= DENSE_TRADES_PER_MINUTE * minutes


def _pow10(exponent: int) -> int:
    return _POWERS[exponent] if exponent < len(_POWERS) else int(10**exponent)


# --- encoding --------------------------------------------------------------------------------


def _parse(text: str) -> tuple[int, int, int]:
    """A decimal text as (digits after the point, the integer of its digits, how many of its
    trailing decimals are zeros)."""
    point = text.find(".")
    if point < 0:
        return 0, int(text), 0
    digits = len(text) - point - 1
    zeros = len(text) - len(text.rstrip("0"))
    return digits, int(text[:point] + text[point + 1 :]), min(zeros, digits)


@dataclass(slots=True)
class _Open:
    """A block being filled trade by trade (the slow path): the bounds its integers reach."""

    price_digits: int
    qty_digits: int
    price_zeros: int  # the fewest trailing zeros of a price so far
    qty_zeros: int
    price_max: int  # the largest |price| so far, at `price_digits` decimals
    delta_max: int  # the largest |price delta| so far, at `price_digits` decimals
    qty_max: int
    low_id: int
    high_id: int

    @classmethod
    def at(cls, columns: _Columns, index: int) -> _Open:
        (pd, pv, pz), (qd, qv, qz) = columns.price[index], columns.qty[index]
        tid = columns.ids[index]
        if abs(pv) // _pow10(pz) > INT8_MAX or abs(qv) // _pow10(qz) > INT8_MAX:
            raise UnencodableTrade(
                f"trade {tid}: price or quantity beyond a 64-bit integer at its own scale"
            )
        return cls(pd, qd, pz, qz, abs(pv), 0, abs(qv), tid, tid)

    def admits(self, columns: _Columns, index: int) -> bool:
        """Whether trade `index` fits this block after trade `index - 1`."""
        (pd, pv, pz), (qd, qv, qz) = columns.price[index], columns.qty[index]
        tid, ms = columns.ids[index], columns.ms[index]
        if pd != self.price_digits or qd != self.qty_digits:
            return False
        if ms - columns.ms[index - 1] > INT4_MAX:
            return False
        if max(self.high_id, tid) - min(self.low_id, tid) > INT4_MAX:
            return False
        pf = _pow10(min(self.price_zeros, pz))
        qf = _pow10(min(self.qty_zeros, qz))
        return (
            max(self.price_max, abs(pv)) // pf <= INT8_MAX
            and max(self.delta_max, abs(pv - columns.price[index - 1][1])) // pf <= INT4_MAX
            and max(self.qty_max, abs(qv)) // qf <= INT8_MAX
        )

    def add(self, columns: _Columns, index: int) -> None:
        (_, pv, pz), (_, qv, qz) = columns.price[index], columns.qty[index]
        tid = columns.ids[index]
        self.price_zeros = min(self.price_zeros, pz)
        self.qty_zeros = min(self.qty_zeros, qz)
        self.price_max = max(self.price_max, abs(pv))
        self.delta_max = max(self.delta_max, abs(pv - columns.price[index - 1][1]))
        self.qty_max = max(self.qty_max, abs(qv))
        self.low_id = min(self.low_id, tid)
        self.high_id = max(self.high_id, tid)


def encode_blocks(
    symbol: str, trades: Iterable[CodecTrade], *, dense: bool, market: int = MARKET_SPOT
) -> list[Block]:
    """`trades` (one symbol's, any order, ids unique) as blocks, in (time, id) order."""
    ordered = sorted(trades, key=itemgetter(3, 0))
    if not ordered:
        return []
    columns = _Columns.of(ordered)
    blocks: list[Block] = []
    for lo, hi in _groups(columns.ms, dense):
        if columns.fits(lo, hi):  # the usual case: the whole minute (or chunk) is one block
            blocks.append(columns.block(market, symbol, lo, hi))
            continue
        blocks.extend(_cut(columns, market, symbol, lo, hi))
    return blocks


def _groups(ms: list[int], dense: bool) -> Iterator[tuple[int, int]]:
    """[lo, hi) of each minute (dense) or of each run of up to SPARSE_BLOCK_TRADES within a
    day (sparse), over times in order."""
    keys = [m // (MINUTE_MS if dense else DAY_MS) for m in ms]
    lo = 0
    for hi in [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]:
        step = hi - lo if dense else SPARSE_BLOCK_TRADES
        for start in range(lo, hi, step):
            yield start, min(start + step, hi)
        lo = hi


@dataclass(frozen=True, slots=True)
class _Columns:
    """The ordered trades as columns, prices and quantities parsed (each distinct text once)."""

    ids: list[int]
    ms: list[int]
    makers: list[bool]
    price: list[tuple[int, int, int]]  # (digits, integer of the digits, trailing zeros)
    qty: list[tuple[int, int, int]]

    @classmethod
    def of(cls, ordered: list[CodecTrade]) -> _Columns:
        ids, prices, qtys, ms, makers = (list(map(itemgetter(i), ordered)) for i in range(5))
        return cls(ids, ms, makers, _parsed(prices), _parsed(qtys))

    def fits(self, lo: int, hi: int) -> bool:
        """Whether trades [lo, hi) make one block (one number of digits, every integer in
        its width)."""
        price, qty = self.price[lo:hi], self.qty[lo:hi]
        if len({p[0] for p in price}) > 1 or len({q[0] for q in qty}) > 1:
            return False
        pf = _pow10(min(p[2] for p in price))
        qf = _pow10(min(q[2] for q in qty))
        values = [p[1] for p in price]
        deltas = list(map(sub, values[1:], values)) or [0]
        ms = self.ms[lo:hi]
        ids = self.ids[lo:hi]
        return (
            max(map(abs, values)) // pf <= INT8_MAX
            and max(map(abs, deltas)) // pf <= INT4_MAX
            and max(abs(q[1]) for q in qty) // qf <= INT8_MAX
            and ms[-1] - ms[0] <= INT4_MAX
            and max(ids) - min(ids) <= INT4_MAX
        )

    def block(self, market: int, symbol: str, lo: int, hi: int) -> Block:
        price, qty = self.price[lo:hi], self.qty[lo:hi]
        price_zeros = min(p[2] for p in price)
        qty_zeros = min(q[2] for q in qty)
        pf, qf = _pow10(price_zeros), _pow10(qty_zeros)
        prices = [p[1] // pf for p in price] if pf > 1 else [p[1] for p in price]
        times = self.ms[lo:hi]
        ids = self.ids[lo:hi]
        low = min(ids)
        return Block(
            market=market,
            symbol=symbol,
            first_ms=times[0],
            first_id=low,
            last_id=max(ids),
            trades=hi - lo,
            last_ms=times[-1],
            base_price=prices[0],
            price_scale=price[0][0] - price_zeros,
            qty_scale=qty[0][0] - qty_zeros,
            price_digits=price[0][0],
            qty_digits=qty[0][0],
            ids=None if ids == list(range(low, low + hi - lo)) else [i - low for i in ids],
            side="".join(map(_BIT.__getitem__, self.makers[lo:hi])),
            ms=[0, *map(sub, times[1:], times)],
            price=[0, *map(sub, prices[1:], prices)],
            qty=[q[1] // qf for q in qty] if qf > 1 else [q[1] for q in qty],
        )


_BIT = {True: "1", False: "0"}


def _parsed(texts: list[str]) -> list[tuple[int, int, int]]:
    table = {text: _parse(text) for text in set(texts)}
    return [table[text] for text in texts]


def _cut(columns: _Columns, market: int, symbol: str, lo: int, hi: int) -> Iterator[Block]:
    """Trades [lo, hi) that are not one block: cut greedily before each trade that would
    change the digits or overflow an integer of the block so far."""
    start = lo
    shape = _Open.at(columns, lo)
    for index in range(lo + 1, hi):
        if shape.admits(columns, index):
            shape.add(columns, index)
            continue
        yield columns.block(market, symbol, start, index)
        start, shape = index, _Open.at(columns, index)
    yield columns.block(market, symbol, start, hi)


# --- decoding --------------------------------------------------------------------------------


def decode_block(block: Block) -> list[CodecTrade]:
    """The block's trades, in (time, id) order, with the texts they were stored with."""
    return _decode(block, {})


def decode_blocks(blocks: Iterable[Block]) -> Iterator[list[CodecTrade]]:
    """`decode_block` of each block, sharing the formatted texts between them: a day repeats
    its prices and round quantities block after block, so most are formatted once."""
    texts: _TextCache = {}
    for block in blocks:
        yield _decode(block, texts)


#: Per (scale, digits), the texts of the integers formatted so far.
_TextCache = dict[tuple[int, int], dict[int, str]]
#: A shared cache is dropped past this many texts of one (scale, digits) (memory stays bounded
#: when decoding a whole month of a coin with ever-new quantities).
_CACHE_LIMIT = 500_000


def _decode(block: Block, texts: _TextCache) -> list[CodecTrade]:
    count = block.trades
    first = block.first_id
    ids: Iterable[int] = (
        range(first, first + count) if block.ids is None else [first + o for o in block.ids]
    )
    times = accumulate(block.ms, initial=block.first_ms)
    next(times)  # `initial` itself; ms[0] is 0, so the first trade's time is first_ms
    prices = accumulate(block.price, initial=block.base_price)
    next(prices)
    return list(
        zip(
            ids,
            _texts(list(prices), block.price_scale, block.price_digits, texts),
            _texts(block.qty, block.qty_scale, block.qty_digits, texts),
            times,
            map("1".__eq__, block.side),
            strict=True,
        )
    )


def _texts(values: Sequence[int], scale: int, digits: int, cache: _TextCache) -> list[str]:
    """Each scaled integer as the decimal text with `digits` decimals, each distinct value
    formatted once."""
    table = cache.setdefault((scale, digits), {})
    try:  # once the cache is warm, every value is in it: one pass in C
        return list(map(table.__getitem__, values))
    except KeyError:
        pass
    if len(table) > _CACHE_LIMIT:
        table.clear()
    pad = "0" * (digits - scale)
    for v in set(values).difference(table):
        table[v] = scaled_text(v, scale, digits, pad)
    return list(map(table.__getitem__, values))


def scaled_text(value: int, scale: int, digits: int, pad: str) -> str:
    """`value` at `scale` decimals as the text with `digits` decimals (`pad` is the zeros
    after the scale's digits)."""
    if value < 0:
        return "-" + scaled_text(-value, scale, digits, pad)
    if digits == 0:
        return str(value)
    if scale == 0:
        return f"{value}.{pad}"
    text = str(value).rjust(scale + 1, "0")
    return f"{text[:-scale]}.{text[-scale:]}{pad}"
