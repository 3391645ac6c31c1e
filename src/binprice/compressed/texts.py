"""Blocks → export lines, a whole block at a time. Pure (no I/O, no clock).

`binprice.export` writes a compressed month by decoding its blocks here instead of through
the server: the server would rebuild a ``numeric`` per trade first, and formatting one trade
at a time in Python (an f-string per line) runs at ~0.3 M trades/s. Here a block's lines are
made column by column, every step a C-level loop over the block (``map`` over a dict's
``__getitem__``, `itertools.accumulate`, slice assignment, one ``str.join``):

- a line is the same few pieces in every format: a constant head, the id, the price and the
  quantity each with the separators around them, the time's minute (``2026-04-01T00:01:``),
  the rest of the time (``SS.mmmZ`` and what follows it) and the side with the line's end;
- the pieces of a price or quantity are cached per ``(scale, digits)`` (a day repeats its
  prices and round quantities block after block), the time's rest is a table of a minute's
  60,000 milliseconds, a minute's text is made once per minute;
- the pieces of all lines go into one list by slice assignment (``parts[2::7] = prices``)
  and are joined once.

Every format's bytes are those of the row path (`binprice.db.export`'s ``COPY`` formats):
tests/test_compressed_reads.py compares them; `tests/test_block_texts.py` compares each
format with the one-trade-at-a-time formatting of `binprice.export_blocks`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import accumulate, groupby, islice, repeat, starmap
from operator import add, floordiv, mod, mul
from typing import TypeVar

from binprice.compressed.codec import Block, scaled_text

__all__ = ["BinanceLines", "LineFormat", "csv_format", "ndjson_format", "texts_key"]

MINUTE_MS = 60_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A shared text cache is dropped past this many texts of one kind (a month of a coin with
#: ever-new quantities must not grow memory without bound).
CACHE_LIMIT = 500_000
#: After a column of mostly new values, this many columns are formatted without the cache
#: before it is tried again (random quantities of 8 decimals never repeat; prices do).
UNCACHED_COLUMNS = 64


class _Texts(dict[int, str]):
    """Scaled integers → their piece of a line: the decimal with `digits` decimals between
    `before` and `after`. A column's texts are looked up (a day repeats its prices and round
    quantities) or, when most of a block's values are new (quantities of many digits),
    formatted directly by a ``%`` template over ``divmod``: both loops run in C."""

    def __init__(self, scale: int, digits: int, before: str, after: str) -> None:
        super().__init__()
        self._scale, self._digits = scale, digits
        self._pad = "0" * (digits - scale)
        self._before, self._after = before, after
        self._unit = 10**scale
        around = before.replace("%", "%%"), after.replace("%", "%%")
        if scale:
            self._template = f"{around[0]}%d.%0{scale}d{self._pad}{around[1]}"
        else:
            self._template = f"{around[0]}%d{'.' + self._pad if digits else ''}{around[1]}"
        self._uncached = 0  # columns still to format directly before the cache is tried again
        self._highs: _Highs | None = None
        self._lows: list[str] = []
        if scale >= _SPLIT_DIGITS:
            self._highs = _Highs(scale - _SPLIT_DIGITS, before)
            self._lows = [f"{low:0{_SPLIT_DIGITS}d}{self._pad}{after}" for low in range(_SPLIT)]

    def __missing__(self, value: int) -> str:
        if len(self) > CACHE_LIMIT:
            self.clear()
        fixed = scaled_text(value, self._scale, self._digits, self._pad)
        text = self[value] = f"{self._before}{fixed}{self._after}"
        return text

    def texts(self, values: Iterable[int]) -> list[str]:
        """The piece of each value, in order."""
        column = values if isinstance(values, list) else list(values)
        if self._uncached:
            self._uncached -= 1
            return self._formatted(column)
        found = list(map(self.get, column))
        if None not in found:
            return found  # type: ignore[return-value]
        new = list(set(column).difference(self))
        if 2 * len(new) > len(column):  # mostly new values: the cache would only cost
            self._uncached = UNCACHED_COLUMNS
            return self._formatted(column)
        if len(self) > CACHE_LIMIT:
            self.clear()
        self.update(zip(new, self._formatted(new), strict=True))
        return list(map(self.__getitem__, column))

    def pieces(self, column: list[int]) -> tuple[list[str], list[str] | None]:
        """The piece of each value, as `texts`, or in two pieces (the value's digits down to
        its last four decimals, then those four) when the value has four decimals or more and
        the cache misses: two table lookups, no formatting (a random quantity of 8 decimals
        takes a third of the time of ``%d.%08d``)."""
        if self._highs is None or not column or min(column) < 0:
            return self.texts(column), None
        if self._uncached:
            self._uncached -= 1
        else:
            found = list(map(self.get, column))
            if None not in found:
                return found, None  # type: ignore[return-value]
            new = list(set(column).difference(self))
            if 2 * len(new) <= len(column):
                if len(self) > CACHE_LIMIT:
                    self.clear()
                self.update(zip(new, self._formatted(new), strict=True))
                return list(map(self.__getitem__, column)), None
            self._uncached = UNCACHED_COLUMNS
        highs = map(self._highs.__getitem__, map(floordiv, column, repeat(_SPLIT)))
        lows = map(self._lows.__getitem__, map(mod, column, repeat(_SPLIT)))
        return list(highs), list(lows)

    def _formatted(self, column: list[int]) -> list[str]:
        if column and min(column) < 0:  # never from Binance; exact all the same
            return list(map(self.__missing__, column))
        if not self._scale:
            return list(map(self._template.__mod__, column))
        return list(map(self._template.__mod__, map(divmod, column, repeat(self._unit))))


#: Decimals of a value's low piece (`_Texts.pieces`): a table of 10,000 texts.
_SPLIT_DIGITS = 4
_SPLIT = 10**_SPLIT_DIGITS


class _Highs(dict[int, str]):
    """``value // 10^4`` → `before` and the value's text down to its last four decimals (made
    on first use; a column repeats them: quantities below 1 have at most 10,000)."""

    def __init__(self, scale: int, before: str) -> None:
        super().__init__()
        self._scale, self._before = scale, before

    def __missing__(self, high: int) -> str:
        if len(self) > CACHE_LIMIT:
            self.clear()
        digits = scaled_text(high, self._scale, self._scale, "") if self._scale else f"{high}."
        text = self[high] = f"{self._before}{digits}"
        return text


class _Decimals:
    """The `_Texts` of prices and of quantities, per (scale, digits), of one export."""

    def __init__(self, price: tuple[str, str], qty: tuple[str, str]) -> None:
        self._around = {"price": price, "qty": qty}
        self._texts: dict[tuple[str, int, int], _Texts] = {}

    def of(self, kind: str, scale: int, digits: int) -> _Texts:
        key = (kind, scale, digits)
        texts = self._texts.get(key)
        if texts is None:
            texts = self._texts[key] = _Texts(scale, digits, *self._around[kind])
        return texts


#: ``HH:MM:`` of each minute of a day.
_DAY_MINUTES = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))


class _Minutes(dict[int, str]):
    """Minutes since the epoch → ``YYYY-MM-DDTHH:MM:`` (as ``to_char`` prints them, UTC): a
    day's date made once, its minutes from a table (a sparse block has a minute per trade)."""

    def __init__(self) -> None:
        super().__init__()
        self._days: dict[int, str] = {}

    def __missing__(self, minute: int) -> str:
        if len(self) > CACHE_LIMIT:
            self.clear()
            self._days.clear()
        day, rest = divmod(minute, len(_DAY_MINUTES))
        date = self._days.get(day)
        if date is None:
            date = self._days[day] = f"{_EPOCH + timedelta(days=day):%Y-%m-%d}T"
        text = self[minute] = date + _DAY_MINUTES[rest]
        return text


@cache
def _tails(after: str) -> tuple[str, ...]:
    """``SS.mmmZ`` + `after` for each millisecond of a minute."""
    return tuple(f"{s:02d}.{m:03d}Z{after}" for s in range(60) for m in range(1000))


#: The last three digits of an id, for ids written as a shared prefix and these.
_SUFFIXES = tuple(f"{i:03d}" for i in range(1000))
_THOUSAND = 1000


class _Columns:
    """One block's trades in ``[lo_ms, hi_ms)`` as lazy columns (integer work, no text):
    each an iterator over the whole block cut to the window's trades, if it has to be."""

    __slots__ = ("count", "cut", "times")

    def __init__(self, block: Block, lo_ms: int, hi_ms: int) -> None:
        self.times: list[int] | None = None
        self.cut: tuple[int, int] | None = None
        self.count = block.trades
        if block.first_ms < lo_ms or block.last_ms >= hi_ms:  # times are in order
            times = self.times = list(accumulate(block.ms, initial=block.first_ms))[1:]
            self.cut = bisect_left(times, lo_ms), bisect_left(times, hi_ms)
            self.count = max(self.cut[1] - self.cut[0], 0)

    def _cut(self, values: Iterable[T]) -> Iterable[T]:
        return values if self.cut is None else islice(values, *self.cut)

    def prices(self, block: Block) -> Iterable[int]:
        # ms[0] and price[0] are 0: `initial` is the first trade's value, given once.
        return self._cut(islice(accumulate(block.price, initial=block.base_price), 1, None))

    def qtys(self, block: Block) -> Iterable[int]:
        return self._cut(block.qty)

    def sides(self, block: Block) -> Iterable[str]:
        return self._cut(block.side)

    def times_after(self, block: Block, base: int) -> Iterable[int]:
        """Each trade's time minus `base`."""
        return self._cut(islice(accumulate(block.ms, initial=block.first_ms - base), 1, None))

    def all_times(self, block: Block) -> list[int]:
        if self.times is None:
            self.times = list(accumulate(block.ms, initial=block.first_ms))[1:]
        return list(self._cut(self.times))

    def ids(self, block: Block, head: str) -> tuple[Iterable[str], Iterable[str]]:
        """The ids as two pieces: `head` with the id's leading digits, and the rest."""
        first = block.first_id
        lo, hi = (0, block.trades) if self.cut is None else self.cut
        if block.ids is not None or first < _THOUSAND:
            return repeat(head, self.count), map(
                str, self._cut(map(add, block.ids or range(block.trades), repeat(first)))
            )
        return _consecutive_ids(head, first + lo, first + hi)


def _consecutive_ids(head: str, at: int, end: int) -> tuple[list[str], list[str]]:
    """Ids `at` to `end` (excluded) as two pieces: per thousand, one text of `head` and the
    leading digits, and a table's last three digits (`at` is 1,000 or more)."""
    leads: list[str] = []
    tails: list[str] = []
    while at < end:
        stop = min((at // _THOUSAND + 1) * _THOUSAND, end)
        leads += repeat(f"{head}{at // _THOUSAND}", stop - at)
        tails += _SUFFIXES[at % _THOUSAND : at % _THOUSAND + stop - at]
        at = stop
    return leads, tails


def _plain_run(blocks: Sequence[Block], lo_ms: int, hi_ms: int) -> bool:
    """Whether `blocks` are minute blocks wholly inside ``[lo_ms, hi_ms)`` whose ids run on
    from one to the next without a hole (a busy symbol's month, block after block)."""
    if blocks[0].first_ms < lo_ms or blocks[-1].last_ms >= hi_ms or blocks[0].first_id < _THOUSAND:
        return False
    expected = blocks[0].first_id
    for block in blocks:
        if (
            block.ids is not None
            or block.first_id != expected
            or block.first_ms // MINUTE_MS != block.last_ms // MINUTE_MS
        ):
            return False
        expected = block.last_id + 1
    return True


T = TypeVar("T")


class LineFormat:
    """A text format whose line is ``head id price qty minute rest side``: the pieces around
    the values are fixed strings (see `csv_format`, `ndjson_format`)."""

    def __init__(
        self,
        head: str,
        price: tuple[str, str],
        qty: tuple[str, str],
        after_time: str,
        sides: tuple[str, str],
    ) -> None:
        self._head = head  # with {symbol}
        self._heads: dict[str, str] = {}
        self._decimals = _Decimals(price, qty)
        self._tails = _tails(after_time)
        self._sides = {"0": sides[0], "1": sides[1]}
        self._minutes = _Minutes()

    def lines(self, block: Block, lo_ms: int, hi_ms: int) -> tuple[str, int]:
        """The block's trades in ``[lo_ms, hi_ms)`` as lines, and how many."""
        return self.batch((block,), lo_ms, hi_ms)

    def batch(self, blocks: Sequence[Block], lo_ms: int, hi_ms: int) -> tuple[str, int]:
        """The trades in ``[lo_ms, hi_ms)`` of `blocks` (in trade order; best all of one
        `texts_key`) as lines, and how many. Each column of the run is gathered block by block
        (a few C-level extends each) and turned into text once, so a block of a hundred
        trades costs little more than its trades."""
        if not blocks:
            return "", 0
        key = texts_key(blocks[0])
        if any(texts_key(block) != key for block in blocks):  # a run per key
            texts, count = [], 0
            for _, same in groupby(blocks, texts_key):
                text, lines = self.batch(list(same), lo_ms, hi_ms)
                texts.append(text)
                count += lines
            return "".join(texts), count
        head = self._heads.get(blocks[0].symbol)
        if head is None:
            head = self._heads[blocks[0].symbol] = self._head.format(symbol=blocks[0].symbol)
        run = _Run([], [], [], [], [], [], [])
        if _plain_run(blocks, lo_ms, hi_ms):
            run.gather_plain(blocks, head, self._minutes)
        else:
            run.gather(blocks, (lo_ms, hi_ms), head, self._minutes)
        return self._text(run, blocks[0])

    def _text(self, run: _Run, first: Block) -> tuple[str, int]:
        """The run's lines: each column's texts put in its place among the pieces, joined."""
        count = len(run.prices)
        if not count:
            return "", 0
        prices = self._decimals.of("price", first.price_scale, first.price_digits)
        qtys = self._decimals.of("qty", first.qty_scale, first.qty_digits)
        parts = [""] * (_PIECES * count)
        parts[0::_PIECES] = run.leads
        parts[1::_PIECES] = run.tails
        parts[2::_PIECES], price_lows = prices.pieces(run.prices)
        if price_lows is not None:
            parts[3::_PIECES] = price_lows
        parts[4::_PIECES], qty_lows = qtys.pieces(run.qtys)
        if qty_lows is not None:
            parts[5::_PIECES] = qty_lows
        parts[6::_PIECES] = run.minutes
        parts[7::_PIECES] = map(self._tails.__getitem__, run.rests)
        parts[8::_PIECES] = map(self._sides.__getitem__, "".join(run.sides))
        return "".join(parts), count


@dataclass(slots=True)
class _Run:
    """The columns of a run of blocks' trades in a window, gathered before any text is made."""

    leads: list[str]
    tails: list[str]
    prices: list[int]
    qtys: list[int]
    minutes: list[str]
    rests: list[int]
    sides: list[str]

    def gather_plain(self, blocks: Sequence[Block], head: str, minutes: _Minutes) -> None:
        """A `_plain_run`'s columns: each a few extends per block, the ids at once."""
        # ms[0] and price[0] are 0: the first trade's values are `initial`.
        for block in blocks:
            minute = block.first_ms // MINUTE_MS
            self.prices += accumulate(block.price[1:], initial=block.base_price)
            self.qtys += block.qty
            self.rests += accumulate(block.ms[1:], initial=block.first_ms - minute * MINUTE_MS)
            self.minutes += repeat(minutes[minute], block.trades)
            self.sides.append(block.side)
        self.leads, self.tails = _consecutive_ids(head, blocks[0].first_id, blocks[-1].last_id + 1)

    def gather(
        self, blocks: Sequence[Block], window: tuple[int, int], head: str, minutes: _Minutes
    ) -> None:
        """Any blocks' columns: cut to the window, ids with holes, blocks over many minutes."""
        for block in blocks:
            cols = _Columns(block, *window)
            if not cols.count:
                continue
            lead, tail = cols.ids(block, head)
            self.leads += lead
            self.tails += tail
            self.prices += cols.prices(block)
            self.qtys += cols.qtys(block)
            self.sides.append(block.side if cols.cut is None else block.side[slice(*cols.cut)])
            minute = block.first_ms // MINUTE_MS
            if block.last_ms // MINUTE_MS == minute:  # a minute block: one minute text
                self.minutes += repeat(minutes[minute], cols.count)
                self.rests += cols.times_after(block, minute * MINUTE_MS)
            else:
                times = cols.all_times(block)
                self.minutes += map(minutes.__getitem__, map(floordiv, times, repeat(MINUTE_MS)))
                self.rests += map(mod, times, repeat(MINUTE_MS))


#: A line's pieces: head with the id's leading digits, the id's rest, the price and the
#: quantity in one or two pieces each, the minute, the rest of the time, the side.
_PIECES = 9


def texts_key(block: Block) -> tuple[str, int, int, int, int]:
    """Blocks of equal keys can be formatted in one `LineFormat.batch`: the symbol and the
    scales and digits of price and quantity."""
    return block.symbol, block.price_scale, block.price_digits, block.qty_scale, block.qty_digits


def csv_format() -> LineFormat:
    """``symbol,trade_id,price,quantity,timestamp,is_buyer_maker`` (`binprice.export`)."""
    return LineFormat("{symbol},", (",", ","), ("", ","), ",", ("false\n", "true\n"))


def ndjson_format() -> LineFormat:
    """One JSON object a line, keys as the CSV's, decimals as strings (`binprice.export`)."""
    return LineFormat(
        '{{"symbol":"{symbol}","trade_id":',
        (',"price":"', '",'),
        ('"quantity":"', '","timestamp":"'),
        '","is_buyer_maker":',
        ("false}\n", "true}\n"),
    )


class BinanceLines:
    """Binance's archive CSV (`binprice.export_binance`): ``id,price,qty,quoteQty,time,
    isBuyerMaker,isBestMatch``, the quote quantity ``price * qty`` rounded half away from zero
    to `quote_decimals`, the time in microseconds from `micros_from_ms` on (ms before)."""

    def __init__(self, micros_from_ms: int, quote_decimals: int) -> None:
        self._micros_from = micros_from_ms
        self._quote_decimals = quote_decimals
        self._unit = 10**quote_decimals
        self._quote = f"{{}}.{{:0{quote_decimals}d}}," if quote_decimals else "{},"
        self._texts = _Decimals((",", ","), ("", ","))
        self._sides = {"0": ",False,True\n", "1": ",True,True\n"}

    def lines(self, block: Block, lo_ms: int, hi_ms: int) -> tuple[str, int]:
        """The block's trades in ``[lo_ms, hi_ms)`` as lines, and how many."""
        cols = _Columns(block, lo_ms, hi_ms)
        count = cols.count
        if not count:
            return "", 0
        price_texts = self._texts.of("price", block.price_scale, block.price_digits)
        qty_texts = self._texts.of("qty", block.qty_scale, block.qty_digits)
        prices, qtys = list(cols.prices(block)), list(cols.qtys(block))
        parts = ["", "", "", "", "", "", ""] * count
        parts[0::7], parts[1::7] = cols.ids(block, "")
        parts[2::7] = price_texts.texts(prices)
        parts[3::7] = qty_texts.texts(qtys)
        parts[4::7] = self._quotes(prices, qtys, block.price_scale + block.qty_scale)
        parts[5::7] = self._times(cols.all_times(block))
        parts[6::7] = map(self._sides.__getitem__, cols.sides(block))
        return "".join(parts), count

    def batch(self, blocks: Sequence[Block], lo_ms: int, hi_ms: int) -> tuple[str, int]:
        """`lines` of each block, joined."""
        texts, count = [], 0
        for block in blocks:
            text, lines = self.lines(block, lo_ms, hi_ms)
            texts.append(text)
            count += lines
        return "".join(texts), count

    def _quotes(self, prices: list[int], qtys: list[int], scale: int) -> Iterable[str]:
        """``round(price * qty, decimals)`` as PostgreSQL prints it: the scaled product, cut
        to the decimals half up (both are positive: half up is half away from zero)."""
        products: Iterable[int] = map(mul, prices, qtys)
        if scale > self._quote_decimals:
            drop = 10 ** (scale - self._quote_decimals)
            products = map(floordiv, map(add, products, repeat(drop // 2)), repeat(drop))
        elif scale < self._quote_decimals:
            products = map(mul, products, repeat(10 ** (self._quote_decimals - scale)))
        if not self._quote_decimals:
            return map(self._quote.format, products)
        return starmap(self._quote.format, map(divmod, products, repeat(self._unit)))

    def _times(self, times: Sequence[int]) -> Iterable[str]:
        if times[0] >= self._micros_from:
            return map(str, map(mul, times, repeat(1000)))
        if times[-1] < self._micros_from:
            return map(str, times)
        return (str(t * 1000 if t >= self._micros_from else t) for t in times)
