"""A window's blocks streamed by ``COPY … TO STDOUT (FORMAT binary)``, parsed with `array`/`struct`.

`binprice.db.blockreads.window_blocks` fetches blocks through a server-side cursor: each fetch is a
round trip during which the server waits, and psycopg turns every array element into a Python
int one at a time. Export reads every block of a window in order and nothing else meanwhile, so
here the same query runs as a binary COPY instead: the server detoasts and sends while the
client parses (two processes on two cores), and an ``int4[]`` is one ``array('i')`` over its
bytes, every other word taken (PostgreSQL's binary array is a length word then the value, per
element, big-endian); an ``int8[]`` the same, every third word, when its values fit 32 bits.

A COPY holds the connection until it ends, so a reader that interleaves another query (the
merge of late rows in `blockreads.window_trades`) keeps the cursor.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import chain
from struct import Struct
from typing import Any

import psycopg

from binprice.compressed.codec import Block
from binprice.db.blockreads import WINDOW_BLOCKS_SQL
from binprice.markets import DEFAULT_MARKET, Market

__all__ = ["copied_blocks", "parse_blocks", "rows_exist"]

Connection = psycopg.Connection[Any]

#: The window's blocks, as `WINDOW_BLOCKS_SQL` selects them, in binary.
WINDOW_BLOCKS_COPY = f"COPY ({WINDOW_BLOCKS_SQL}) TO STDOUT (FORMAT binary)"

#: Whether one symbol has rows in ``[start, end)`` (late rows of a compressed month: its row
#: partition is empty otherwise, so the seed index answers at once).
ROWS_EXIST_SQL = """
SELECT EXISTS (
    SELECT FROM trades
    WHERE market = %(market)s AND symbol = %(symbol)s
      AND timestamp >= %(start)s AND timestamp < %(end)s
)
"""

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_INT16 = Struct(">h")
_INT32 = Struct(">i")
_INT64 = Struct(">q")
#: An element of an ``int8[]``: its length word (8), skipped, then the value.
_INT8_ELEMENT = Struct(">4xq")
#: The columns of `BLOCK_COLUMNS`: 12 scalars, then ids, side, ms, price, qty.
_FIELDS = 17
#: A one-dimensional array's header: ndim, has-nulls flag, element type, length, lower bound.
_ARRAY_HEADER = 20
_SWAP = sys.byteorder == "little"


class _Incomplete(Exception):
    """The buffer ends inside a row (wait for the next chunk)."""


def copied_blocks(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    market: Market = DEFAULT_MARKET,
) -> Iterator[Block]:
    """The blocks of ``symbol`` holding trades of ``[start, end)``, in trade order (as
    `window_blocks`), by one binary COPY; nothing else may use ``conn`` until it is exhausted."""
    params = {"symbol": symbol, "start": start, "end": end, "market": market.number}
    with conn.cursor() as cur, cur.copy(WINDOW_BLOCKS_COPY, params) as copy:
        yield from parse_blocks(bytes(chunk) for chunk in copy)


def rows_exist(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    market: Market = DEFAULT_MARKET,
) -> bool:
    """Whether ``symbol`` of ``market`` has rows (not blocks) in ``[start, end)``."""
    params = {"symbol": symbol, "start": start, "end": end, "market": market.number}
    row = conn.execute(ROWS_EXIST_SQL, params).fetchone()
    return bool(row and row[0])


def parse_blocks(chunks: Iterable[bytes]) -> Iterator[Block]:
    """Blocks from the bytes of a binary COPY of `BLOCK_COLUMNS`, however the bytes are cut."""
    buffer = b""
    header = True
    for chunk in chunks:
        buffer = buffer + chunk if buffer else chunk
        pos = 0
        if header:
            if len(buffer) < len(_SIGNATURE) + 8:
                continue
            if not buffer.startswith(_SIGNATURE):
                raise ValueError("not a binary COPY stream")
            (extension,) = _INT32.unpack_from(buffer, len(_SIGNATURE) + 4)
            pos = len(_SIGNATURE) + 8 + extension
            header = False
        while pos < len(buffer):
            try:
                block, pos = _row(buffer, pos)
            except _Incomplete:
                break
            if block is None:  # the trailer: the COPY's end follows (read to it)
                pos = len(buffer)
                break
            yield block
        buffer = buffer[pos:]


def _field(buffer: bytes, pos: int) -> tuple[int, int]:
    """(start, length) of the field at ``pos``; length -1 is NULL."""
    if pos + 4 > len(buffer):
        raise _Incomplete
    (length,) = _INT32.unpack_from(buffer, pos)
    if pos + 4 + max(length, 0) > len(buffer):
        raise _Incomplete
    return pos + 4, length


#: A row's start: its field count, then the market (length word, int2) and the symbol's length.
_HEAD = Struct(">hihi")
#: The scalars after the symbol, each behind its length word (NOT NULL, fixed widths), read
#: by one unpack: first_ms, first_id, last_id, trades, last_ms, base_price, then the scales
#: and digits of price and quantity.
_TAIL = Struct(">iqiqiqiiiqiqihihihih")


def _row(buffer: bytes, pos: int) -> tuple[Block | None, int]:
    if pos + 2 > len(buffer):
        raise _Incomplete
    (count,) = _INT16.unpack_from(buffer, pos)
    if count == -1:
        return None, pos + 2
    if count != _FIELDS:
        raise ValueError(f"a block row of {count} fields, expected {_FIELDS}")
    if pos + _HEAD.size > len(buffer):
        raise _Incomplete
    _, _, market, length = _HEAD.unpack_from(buffer, pos)
    pos += _HEAD.size
    if pos + length + _TAIL.size > len(buffer):
        raise _Incomplete
    symbol = buffer[pos : pos + length].decode()
    pos += length
    first_ms, first_id, last_id, trades, last_ms, base, *scales = _TAIL.unpack_from(buffer, pos)[
        1::2
    ]
    price_scale, qty_scale, price_digits, qty_digits = scales
    pos += _TAIL.size
    start, length = _field(buffer, pos)
    ids = None if length < 0 else _int4s(buffer, start, length)
    pos = start + max(length, 0)
    start, length = _field(buffer, pos)
    side = buffer[start : start + length].decode()
    pos = start + length
    start, length = _field(buffer, pos)
    ms = _int4s(buffer, start, length)
    start, length = _field(buffer, start + length)
    price = _int4s(buffer, start, length)
    start, length = _field(buffer, start + length)
    qty = _int8s(buffer, start, length)
    block = Block(
        market,
        symbol,
        first_ms,
        first_id,
        last_id,
        trades,
        last_ms,
        base,
        price_scale,
        qty_scale,
        price_digits,
        qty_digits,
        ids,
        side,
        ms,
        price,
        qty,
    )
    return block, start + length


def _elements(buffer: bytes, start: int, length: int, width: int) -> tuple[int, int]:
    """(offset of the first element, element count) of a one-dimensional array without NULLs."""
    (ndim,) = _INT32.unpack_from(buffer, start)
    if ndim == 0:
        return start, 0
    (count,) = _INT32.unpack_from(buffer, start + 12)
    if ndim != 1 or length != _ARRAY_HEADER + count * (4 + width):
        raise ValueError("a block array is not one-dimensional without NULLs")
    return start + _ARRAY_HEADER, count


def _int4s(buffer: bytes, start: int, length: int) -> array[int]:
    """An ``int4[]``: the (length, value) words read at once, the values taken."""
    first, count = _elements(buffer, start, length, 4)
    words = array("i", buffer[first : first + 8 * count])
    if _SWAP:
        words.byteswap()
    return words[1::2]


def _int8s(buffer: bytes, start: int, length: int) -> Sequence[int]:
    """An ``int8[]``: read as three words per element (length, high, low); when every high
    word is 0 (values below 2^32, as quantities are) the low words are the values, else one
    (skip the length word, read the value) unpack per element, in C."""
    first, count = _elements(buffer, start, length, 8)
    data = buffer[first : first + 12 * count]
    words = array("I", data)
    if _SWAP:
        words.byteswap()
    if not any(words[1::3]):
        return words[2::3]
    return list(chain.from_iterable(_INT8_ELEMENT.iter_unpack(data)))
