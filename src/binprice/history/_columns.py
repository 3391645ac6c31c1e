"""Archive CSV fields → integer columns, and their per-minute rollup rows. Pure.

The compressed form stores prices and quantities as integers at a scale, so the import of a
closed month turns each line's text straight into integers: ``"73109.30000000"`` is
``7310930000000`` at 8 digits, its point removed (no Decimal, no float). Where the number of
decimals of prices or quantities changes, a new `Columns` starts, so each has one number of
digits per column, which the stored numerics keep (the blocks' `price_digits`, `qty_digits`).

The rollup (`trade_minutes`) of what the import adds is computed from the same integers,
exactly as the trigger on `trades` computes it from rows: count, first and last id, open and
close (the prices of the lowest and highest id), high, low, volume (the sum of quantities) and
notional (the sum of price times quantity), as decimal text at the scale PostgreSQL's numeric
arithmetic gives (a sum keeps its terms' decimals, a product adds them).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from operator import itemgetter

from binprice.compressed.codec import MINUTE_MS
from binprice.compressed.columns import Columns, fixed_text
from binprice.history._csv import Fields

#: `trade_minutes`' columns in the order `minute_rows` gives them (the minute as epoch ms).
MINUTE_COLUMNS = (
    "symbol",
    "minute",
    "trades",
    "volume",
    "notional",
    "high",
    "low",
    "first_id",
    "last_id",
    "open",
    "close",
)


def digits(values: Sequence[str]) -> list[int]:
    """Each decimal's number of digits after the point."""
    return [len(v) - v.find(".") - 1 if "." in v else 0 for v in values]


def to_columns(fields: Sequence[Fields], ids: list[int] | None = None) -> list[Columns]:
    """`fields` (from `CsvDecoder(fields=True)`, in id order) as integer columns: one
    `Columns`, or more where the number of decimals of prices or quantities changes. `ids`:
    the fields' ids as integers, if the decoder has them already."""
    if not fields:
        return []
    # One C loop per column (`zip(*fields)` steps every row's iterator for every column: 4x).
    prices, qtys, seconds, millis, makers = (list(map(itemgetter(i), fields)) for i in range(1, 6))
    if ids is None:
        ids = list(map(int, map(itemgetter(0), fields)))
    times = list(map(int, map(operator.add, seconds, millis)))
    side = "".join(makers)
    for word, bit in (("True", "1"), ("False", "0"), ("true", "1"), ("false", "0")):
        side = side.replace(word, bit)
    price_scaled, qty_scaled = _uniform(prices), _uniform(qtys)
    if price_scaled is not None and qty_scaled is not None:  # Binance: always 8 decimals
        (price_ints, price_places), (qty_ints, qty_places) = price_scaled, qty_scaled
        return [Columns(ids, times, price_ints, qty_ints, side, price_places, qty_places)]
    pdig, qdig = digits(prices), digits(qtys)
    breaks: list[int] = []
    if len(set(pdig)) > 1 or len(set(qdig)) > 1:
        breaks = [
            i for i in range(1, len(fields)) if (pdig[i], qdig[i]) != (pdig[i - 1], qdig[i - 1])
        ]
    if not breaks:
        return [_columns(ids, times, prices, qtys, side, places=(pdig[0], qdig[0]))]
    out, start = [], 0
    for end in [*breaks, len(fields)]:
        part = slice(start, end)
        out.append(
            _columns(
                ids[part],
                times[part],
                prices[part],
                qtys[part],
                side[part],
                places=(pdig[start], qdig[start]),
            )
        )
        start = end
    return out


def _uniform(values: Sequence[str]) -> tuple[list[int], int] | None:
    """`values` with their points removed and their number of decimals, when they all have
    the same number (their point at the same place from the end: the CSV's pattern allows one
    point at most), else None. C loops over the column instead of Python steps per value."""
    places = digits(values[:1])[0]
    joined = "\n".join(values)
    if not places:
        return None if "." in joined else (list(map(int, values)), 0)
    try:
        points = set(map(itemgetter(-places - 1), values))
    except IndexError:  # a value shorter than its first's decimals
        return None
    if points != {"."}:
        return None
    return list(map(int, joined.replace(".", "").split("\n"))), places


def _columns(
    ids: list[int],
    times: list[int],
    prices: Sequence[str],
    qtys: Sequence[str],
    side: str,
    *,
    places: tuple[int, int],
) -> Columns:
    """One run of equal decimals: the texts' points removed."""
    return Columns(
        ids,
        times,
        [int(p.replace(".", "")) for p in prices],
        [int(q.replace(".", "")) for q in qtys],
        side,
        *places,
    )


def minute_rows(symbol: str, columns: Columns) -> Iterator[tuple[str, ...]]:
    """The rollup of `columns`' trades, one row a minute, as text (`MINUTE_COLUMNS`)."""
    pd, qd = columns.price_digits, columns.qty_digits
    for m in _minutes(columns):
        prices, qtys = m.prices, m.qtys
        yield (
            symbol,
            str(m.times[0] // MINUTE_MS * MINUTE_MS),
            str(len(m)),
            fixed_text(sum(qtys), qd),
            fixed_text(sum(map(operator.mul, prices, qtys)), pd + qd),
            fixed_text(max(prices), pd),
            fixed_text(min(prices), pd),
            str(m.ids[0]),
            str(m.ids[-1]),
            fixed_text(prices[0], pd),
            fixed_text(prices[-1], pd),
        )


def _minutes(columns: Columns) -> Iterator[Columns]:
    """The trades of each minute, in id order."""
    times = columns.times
    if all(map(operator.le, times, times[1:])):
        yield from columns.spans(MINUTE_MS)
        return
    # Times out of id order (not in Binance's files): each minute's trades gathered.
    order = sorted(range(len(times)), key=lambda i: (times[i] // MINUTE_MS, columns.ids[i]))
    ordered = Columns(
        [columns.ids[i] for i in order],
        [times[i] for i in order],
        [columns.prices[i] for i in order],
        [columns.qtys[i] for i in order],
        "".join(columns.side[i] for i in order),
        columns.price_digits,
        columns.qty_digits,
    )
    yield from ordered.spans(MINUTE_MS)
