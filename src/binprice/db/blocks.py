"""`trade_blocks` (migration 0010): its monthly partitions, writing blocks, reading them back.

The codec (`binprice.compressed.codec`) makes the blocks; this module only moves them.

- **Months.** `trade_blocks_YYYY_MM`, one per UTC month of `first_ts`, made `WITH
  (toast_tuple_target = 128)` (a partitioned parent takes no storage parameters) with the
  parent's `STORAGE MAIN` arrays: every block above 128 bytes is compressed and kept in line.
  `new_month_table` makes one as a plain table with a CHECK on its range (filled, then
  `attach_month` attaches it without a validation scan); `ensure_block_month` makes and
  attaches an empty one directly.
- **Writing**: `write_blocks`, binary COPY, built here by hand (psycopg has no binary dumper for
  `bit varying`; packing the arrays with `struct` is also several times faster than per-value
  dumpers).
- **Reading**: `read_blocks` (by time) and `read_blocks_by_id`, as `Block`s (times as epoch
  ms); `trades_of` turns a block into `binprice.Trade`-shaped tuples with `Decimal` and aware
  datetimes for readers that want those.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql

from binprice.compressed.codec import MARKET_SPOT, Block, decode_block

__all__ = [
    "BLOCK_COLUMNS",
    "attach_month",
    "block_month_name",
    "ensure_block_month",
    "from_ms",
    "new_month_table",
    "read_blocks",
    "read_blocks_by_id",
    "to_ms",
    "trades_of",
    "write_blocks",
]

Connection = psycopg.Connection[Any]

#: The columns of trade_blocks, in the order of `Block`'s fields.
BLOCK_COLUMNS = (
    "market",
    "symbol",
    "first_ts",
    "first_id",
    "last_id",
    "trades",
    "last_ts",
    "base_price",
    "price_scale",
    "qty_scale",
    "price_digits",
    "qty_digits",
    "ids",
    "side",
    "ms",
    "price",
    "qty",
)
#: Above this, a compressed block is still moved out of line (TOAST); see docs/storage-design.md.
TOAST_TUPLE_TARGET = 128
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: PostgreSQL's binary timestamps count microseconds from 2000-01-01.
_PG_EPOCH_MS = 946_684_800_000
_INT4_OID, _INT8_OID = 23, 20
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)

#: The block columns as the reader selects them: times as epoch ms, the bit string as text.
_SELECT = """
SELECT market, symbol, (extract(epoch FROM first_ts) * 1000)::int8, first_id, last_id, trades,
       (extract(epoch FROM last_ts) * 1000)::int8, base_price, price_scale, qty_scale,
       price_digits, qty_digits, ids, side::text, ms, price, qty
FROM trade_blocks"""
_BY_TIME_SQL = f"""{_SELECT}
WHERE market = %(market)s AND symbol = %(symbol)s
  AND first_ts < %(end)s AND last_ts >= %(start)s
  AND first_ts >= %(start)s - interval '1 day'
ORDER BY first_ts, first_id"""
_BY_ID_SQL = f"""{_SELECT}
WHERE market = %(market)s AND symbol = %(symbol)s
  AND first_id <= %(last)s AND last_id >= %(first)s
ORDER BY first_ts, first_id"""


def to_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds (exact: stored times have ms precision)."""
    return (moment - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=ms)


def block_month_name(month: datetime) -> str:
    """The partition of trade_blocks for the UTC month starting at `month`."""
    return f"trade_blocks_{month:%Y_%m}"


def _month_end(month: datetime) -> datetime:
    return (month + timedelta(days=32)).replace(day=1)


def new_month_table(conn: Connection, month: datetime, name: str | None = None) -> str:
    """A plain table shaped as the month's partition of trade_blocks (columns, storage, the
    128-byte TOAST target, a CHECK on the month's range), not attached; its name."""
    table = name or block_month_name(month) + "_new"
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE trade_blocks INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING STORAGE INCLUDING COMPRESSION, CONSTRAINT {} CHECK "
            "(first_ts >= {} AND first_ts < {})) WITH (toast_tuple_target = {})"
        ).format(
            sql.Identifier(table),
            sql.Identifier(f"ck_{table}_month"),
            sql.Literal(month),
            sql.Literal(_month_end(month)),
            sql.Literal(TOAST_TUPLE_TARGET),
        )
    )
    return table


def attach_month(conn: Connection, table: str, month: datetime) -> str:
    """Attach `table` (from `new_month_table`) as the month's partition of trade_blocks, under
    the month's name; its CHECK spares the validation scan. The primary key's index is built
    here, after the rows (one sorted build). Takes SHARE UPDATE EXCLUSIVE on trade_blocks:
    readers and writers go on."""
    name = block_month_name(month)
    if table != name:
        rename = sql.SQL("ALTER TABLE {} RENAME TO {}")
        conn.execute(rename.format(sql.Identifier(table), sql.Identifier(name)))
    conn.execute(
        sql.SQL("ALTER TABLE trade_blocks ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name), sql.Literal(month), sql.Literal(_month_end(month))
        )
    )
    return name


def ensure_block_month(conn: Connection, month: datetime) -> str:
    """The month's partition of trade_blocks, made (empty, attached) if missing; its name."""
    name = block_month_name(month)
    exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    if exists is None or exists[0] is None:
        attach_month(conn, new_month_table(conn, month, name), month)
    return name


# --- writing ---------------------------------------------------------------------------------


def write_blocks(conn: Connection, blocks: Iterable[Block], table: str = "trade_blocks") -> int:
    """COPY `blocks` into `table` (trade_blocks, whose months must exist, or a month's table);
    the number written. In the caller's transaction."""
    count = 0
    query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, BLOCK_COLUMNS))
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        copy.write(_COPY_HEADER)
        chunk: list[bytes] = []
        for block in blocks:
            chunk.append(_row(block))
            count += 1
            if len(chunk) == 256:
                copy.write(b"".join(chunk))
                chunk.clear()
        chunk.append(_COPY_TRAILER)
        copy.write(b"".join(chunk))
    return count


def _row(b: Block) -> bytes:
    symbol = b.symbol.encode()
    head = struct.pack(
        f">hih i{len(symbol)}s iq iq iq ii iq iq ih ih ih ih",
        len(BLOCK_COLUMNS),
        2,
        b.market,
        len(symbol),
        symbol,
        8,
        (b.first_ms - _PG_EPOCH_MS) * 1000,
        8,
        b.first_id,
        8,
        b.last_id,
        4,
        b.trades,
        8,
        (b.last_ms - _PG_EPOCH_MS) * 1000,
        8,
        b.base_price,
        2,
        b.price_scale,
        2,
        b.qty_scale,
        2,
        b.price_digits,
        2,
        b.qty_digits,
    )
    ids = _NULL if b.ids is None else _array(b.ids, _INT4_OID)
    return b"".join(
        (
            head,
            ids,
            _bits(b.side),
            _array(b.ms, _INT4_OID),
            _array(b.price, _INT4_OID),
            _array(b.qty, _INT8_OID),
        )
    )


_NULL = struct.pack(">i", -1)


def _bits(side: str) -> bytes:
    """A '0'/'1' string as a binary `bit varying` field (bit 0 is the first byte's highest)."""
    size = (len(side) + 7) // 8
    value = int(side, 2) << (size * 8 - len(side))
    return struct.pack(">ii", 4 + size, len(side)) + value.to_bytes(size, "big")


@lru_cache(maxsize=4096)
def _elements(count: int, oid: int) -> struct.Struct:
    item = "ii" if oid == _INT4_OID else "iq"
    return struct.Struct(">" + item * count)


def _array(values: Sequence[int], oid: int) -> bytes:
    """A one-dimensional array without NULLs, as a binary field."""
    count = len(values)
    width = 4 if oid == _INT4_OID else 8
    interleaved: list[int] = [width] * (2 * count)
    interleaved[1::2] = values
    body = _elements(count, oid).pack(*interleaved)
    head = struct.pack(">iiiiii", 20 + len(body), 1, 0, oid, count, 1)
    return head + body


# --- reading ---------------------------------------------------------------------------------


def _blocks(rows: Iterable[Sequence[Any]]) -> list[Block]:
    return [Block(*row) for row in rows]


def read_blocks(
    conn: Connection, symbol: str, start: datetime, end: datetime, *, market: int = MARKET_SPOT
) -> list[Block]:
    """The blocks of `symbol` holding a trade that may lie in `[start, end)`, in time order
    (the first and last may hold trades outside it: filter the decoded trades). A block
    never spans more than a UTC day, which bounds the probe of the primary key."""
    params = {"market": market, "symbol": symbol, "start": start, "end": end}
    return _blocks(conn.execute(_BY_TIME_SQL, params).fetchall())


def read_blocks_by_id(
    conn: Connection, symbol: str, first_id: int, last_id: int, *, market: int = MARKET_SPOT
) -> list[Block]:
    """The blocks of `symbol` holding an id in `[first_id, last_id]`, in time order."""
    params = {"market": market, "symbol": symbol, "first": first_id, "last": last_id}
    return _blocks(conn.execute(_BY_ID_SQL, params).fetchall())


def trades_of(block: Block) -> Iterator[tuple[str, int, Decimal, Decimal, datetime, bool]]:
    """The block's trades as (symbol, trade_id, price, quantity, timestamp, is_buyer_maker),
    the columns of `trades`, with exact Decimals and aware UTC datetimes."""
    symbol = block.symbol
    for tid, price, qty, ms, maker in decode_block(block):
        yield symbol, tid, Decimal(price), Decimal(qty), from_ms(ms), maker
