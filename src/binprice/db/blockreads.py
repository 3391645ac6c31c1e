"""Reading compressed months: which blocks a question needs, fetched by primary key, decoded here.

A compressed month keeps its trades in `trade_blocks` (migration 0010; one row per block of one
symbol's trades in id order, times and prices as deltas, see `docs/storage-design.md`), and
late writes into it land as rows in `trades` until it is compressed again. Readers therefore
read rows and blocks for a month in the catalog `compressed_months`, and rows alone otherwise.

Blocks of one symbol never overlap in time except at one shared millisecond (ids grow with
time), so every question needs few of them, all found by the key `(market, symbol, first_ts,
first_id)`:

- a window `[start, end)`: the block that starts last before `start` (if it ends at or after
  `start`) and every block starting inside the window;
- the trades around a time: the block that starts last at or before it and the one after;
- the last trade: the block that starts last.

Decoding is exact integer work (running sums of the deltas, the decimal point put in by text),
so a price reads back as the same `Decimal`, with the same number of decimals, as its row.
The SQL is kept apart from the row side's (`queries`, `candles`, `export`, …), which reads
`trades` as before.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any, NamedTuple

import psycopg

from binprice.compressed.codec import Block, decode_block
from binprice.db.catalog import Compressed, compressed_catalog, snapshot
from binprice.markets import DEFAULT_MARKET, Market

__all__ = [
    "BlockTrade",
    "Compressed",
    "compressed_catalog",
    "decode",
    "window_blocks",
    "window_lists",
]

Connection = psycopg.Connection[Any]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)

#: The columns of `binprice.compressed.codec.Block`, in its order: times as epoch ms, the bit
#: string as text (as `binprice.db.blocks` reads them).
BLOCK_COLUMNS = (
    "market, symbol, (extract(epoch FROM first_ts) * 1000)::int8, first_id, last_id, trades, "
    "(extract(epoch FROM last_ts) * 1000)::int8, base_price, price_scale, qty_scale, "
    "price_digits, qty_digits, ids, side::text, ms, price, qty"
)


_ONE_SYMBOL = "market = %(market)s AND symbol = %(symbol)s"
#: The blocks of one symbol holding trades of `[start, end)`, in trade order.
WINDOW_BLOCKS_SQL = f"""
SELECT {BLOCK_COLUMNS} FROM (
    SELECT * FROM trade_blocks WHERE {_ONE_SYMBOL} AND first_ts < %(start)s
    ORDER BY first_ts DESC, first_id DESC LIMIT 1
) AS straddling WHERE last_ts >= %(start)s
UNION ALL
(SELECT {BLOCK_COLUMNS} FROM trade_blocks
 WHERE {_ONE_SYMBOL} AND first_ts >= %(start)s AND first_ts < %(end)s
 ORDER BY first_ts, first_id)
"""

#: Per symbol, the block starting last at or before `ts` and the block after it: every trade
#: at or before `ts` that is nearest, and the first one after it, are in these two.
AROUND_SQL = f"""
SELECT b.* FROM unnest(%(symbols)s::text[]) AS r(symbol)
CROSS JOIN LATERAL (
    (SELECT {BLOCK_COLUMNS} FROM trade_blocks
     WHERE market = %(market)s AND symbol = r.symbol AND first_ts <= %(ts)s
     ORDER BY first_ts DESC, first_id DESC LIMIT 1)
    UNION ALL
    (SELECT {BLOCK_COLUMNS} FROM trade_blocks
     WHERE market = %(market)s AND symbol = r.symbol AND first_ts > %(ts)s
       AND NOT %(before)s
     ORDER BY first_ts, first_id LIMIT 1)
) AS b
"""

#: Per symbol, its last block when that holds a higher id than `above` (the rows' last id).
LAST_BLOCKS_SQL = f"""
SELECT b.* FROM unnest(%(symbols)s::text[], %(above)s::bigint[]) AS r(symbol, above)
CROSS JOIN LATERAL (
    SELECT {BLOCK_COLUMNS} FROM trade_blocks
    WHERE market = %(market)s AND symbol = r.symbol
    ORDER BY first_ts DESC, first_id DESC LIMIT 1
) AS b
WHERE b.last_id > coalesce(r.above, -1)
"""

#: Symbols with blocks, by a loose index scan of the key (one probe per symbol).
BLOCK_SYMBOLS_SQL = """
WITH RECURSIVE known(symbol) AS (
    (SELECT symbol FROM trade_blocks WHERE market = %(market)s ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT b.symbol FROM trade_blocks AS b
            WHERE b.market = %(market)s AND b.symbol > k.symbol ORDER BY b.symbol LIMIT 1)
    FROM known AS k
    WHERE k.symbol IS NOT NULL
)
SELECT symbol FROM known WHERE symbol IS NOT NULL
"""


class BlockTrade(NamedTuple):
    """One decoded trade; ordered as trades are, by ``(timestamp, trade_id)``."""

    timestamp: datetime
    trade_id: int
    price: Decimal
    quantity: Decimal
    is_buyer_maker: bool


def trade_ids(block: Block) -> list[int]:
    """Every id of the block, in order (consecutive unless `ids` says otherwise)."""
    if block.ids is None:
        return list(range(block.first_id, block.first_id + block.trades))
    return [block.first_id + offset for offset in block.ids]


def epoch_ms(block: Block) -> list[int]:
    """Every trade's time in milliseconds since the epoch."""
    return list(accumulate(block.ms, initial=block.first_ms))[1:]


def trade_at(block: Block, index: int, times: list[int] | None = None) -> BlockTrade:
    """The trade at ``index`` alone (a prefix sum of the price deltas up to it)."""
    ms = (times or epoch_ms(block))[index]
    price = (block.base_price + sum(block.price[: index + 1])) * 10 ** (
        block.price_digits - block.price_scale
    )
    quantity = block.qty[index] * 10 ** (block.qty_digits - block.qty_scale)
    trade_id = block.first_id + (index if block.ids is None else block.ids[index])
    return BlockTrade(
        EPOCH + ms * MILLISECOND,
        trade_id,
        _decimal(price, block.price_digits),
        _decimal(quantity, block.qty_digits),
        block.side[index] == "1",
    )


def decode(block: Block) -> list[BlockTrade]:
    """The block's trades, in order, as exact Decimals (the stored decimals) and UTC times."""
    return [
        BlockTrade(EPOCH + ms * MILLISECOND, trade_id, Decimal(price), Decimal(qty), maker)
        for trade_id, price, qty, ms, maker in decode_block(block)
    ]


def _decimal(scaled: int, digits: int) -> Decimal:
    # A string is read exactly whatever the decimal context: 12345e-2 is 123.45, two decimals.
    return Decimal(f"{scaled}e-{digits}")


def decimal_text(scaled: int, digits: int) -> str:
    """``scaled / 10 ** digits`` as PostgreSQL prints the numeric (no exponent, all digits)."""
    if digits == 0:
        return str(scaled)
    text = str(scaled).rjust(digits + 1, "0")
    return f"{text[:-digits]}.{text[-digits:]}"


def to_ms(moment: datetime) -> int:
    """An aware time as epoch milliseconds, rounded up: the first stored time at or after it
    (stored times are whole milliseconds)."""
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    return -(-micros // 1000)


def _block(row: Sequence[Any]) -> Block:
    return Block(*row)


def window_blocks(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    market: Market = DEFAULT_MARKET,
) -> Iterator[Block]:
    """The blocks of ``symbol`` holding trades of ``[start, end)``, in trade order, through a
    server-side cursor (a month of blocks is hundreds of MB): call it in a transaction."""
    params = {"symbol": symbol, "start": start, "end": end, "market": market.number}
    with conn.cursor(name="binprice_blocks") as cur:
        cur.execute(WINDOW_BLOCKS_SQL, params)
        while rows := cur.fetchmany(WINDOW_FETCH):
            yield from (_block(row) for row in rows)


#: Blocks fetched per round trip when a window is read (a busy minute each).
WINDOW_FETCH = 256


def block_trades(block: Block, start: datetime, end: datetime) -> list[BlockTrade]:
    """The block's decoded trades in ``[start, end)`` (only those made Decimals and times)."""
    texts = decode_block(block)
    lo, hi = to_ms(start), to_ms(end)
    if block.first_ms < lo or block.last_ms >= hi:  # times are in order
        times = [text[3] for text in texts]
        texts = texts[bisect_left(times, lo) : bisect_left(times, hi)]
    return [
        BlockTrade(EPOCH + ms * MILLISECOND, trade_id, Decimal(price), Decimal(qty), maker)
        for trade_id, price, qty, ms, maker in texts
    ]


#: One symbol's rows of a window in trade order (late rows of a compressed month, or row
#: months of a window that spans both kinds).
WINDOW_ROWS_SQL = """
SELECT timestamp, trade_id, price, quantity, is_buyer_maker FROM trades
WHERE market = %(market)s AND symbol = %(symbol)s
  AND timestamp >= %(start)s AND timestamp < %(end)s
ORDER BY timestamp, trade_id
"""
#: Rows per fetch of a window's rows.
ROW_FETCH = 10_000


def window_trades(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    market: Market = DEFAULT_MARKET,
) -> Iterator[BlockTrade]:
    """One symbol's trades in ``[start, end)`` from rows and blocks, in trade order, exact;
    through server-side cursors, so it runs in a transaction: one snapshot for rows and blocks
    (`snapshot`; the caller's transaction if one is open)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    params = {"symbol": symbol, "start": start, "end": end, "market": market.number}
    with snapshot(conn), conn.cursor(name="binprice_window_rows") as cur:
        cur.execute(WINDOW_ROWS_SQL, params)
        rows = (
            BlockTrade(ts.astimezone(UTC), i, p, q, m)
            for batch in iter(lambda: cur.fetchmany(ROW_FETCH), [])
            for ts, i, p, q, m in batch
        )
        blocks = (
            trade
            for block in window_blocks(conn, symbol, start, end, market)
            for trade in block_trades(block, start, end)
        )
        yield from merged(rows, blocks)


def window_list(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    market: Market = DEFAULT_MARKET,
) -> list[BlockTrade]:
    """`window_trades` as a list (for the short windows at the ends of a range)."""
    return window_lists(conn, [(symbol, start, end)], market)[0]


#: Short windows `w(symbol, lo, hi, n)` of several symbols, given as arrays.
_WINDOWS = (
    "unnest(%(symbols)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[]) "
    "WITH ORDINALITY AS w(symbol, lo, hi, n)"
)
#: The blocks holding trades of each short window (`WINDOW_BLOCKS_SQL` per window), numbered
#: by window, in trade order.
WINDOWS_BLOCKS_SQL = f"""
SELECT w.n, b.* FROM {_WINDOWS}
CROSS JOIN LATERAL (
    SELECT {BLOCK_COLUMNS} FROM (
        SELECT * FROM trade_blocks
        WHERE market = %(market)s AND symbol = w.symbol AND first_ts < w.lo
        ORDER BY first_ts DESC, first_id DESC LIMIT 1
    ) AS straddling WHERE last_ts >= w.lo
    UNION ALL
    SELECT {BLOCK_COLUMNS} FROM trade_blocks
    WHERE market = %(market)s AND symbol = w.symbol AND first_ts >= w.lo AND first_ts < w.hi
) AS b
ORDER BY 1, 4, 5
"""
#: The rows of each short window (`WINDOW_ROWS_SQL` per window), numbered, in trade order.
#: The window's ids are bounded by the rollup minutes it spans (every trade of the window lies
#: in one of them), so the primary key is read as one id range: bounded by time alone, it
#: was read for all of the symbol's rows of the month, which a live month compressed by days
#: holds (84 ms for a 43 s window of a 200k-trades-a-day symbol, 4 days in; docs/storage-
#: design.md, "Live month: closed days in blocks").
WINDOWS_ROWS_SQL = f"""
SELECT w.n, t.timestamp, t.trade_id, t.price, t.quantity, t.is_buyer_maker FROM {_WINDOWS}
CROSS JOIN LATERAL (
    SELECT min(first_id) AS lo_id, max(last_id) AS hi_id FROM trade_minutes
    WHERE market = %(market)s AND symbol = w.symbol
      AND minute >= date_trunc('minute', w.lo, 'UTC') AND minute < w.hi
) AS ids
CROSS JOIN LATERAL (
    SELECT * FROM trades
    WHERE market = %(market)s AND symbol = w.symbol AND trade_id >= ids.lo_id
      AND trade_id <= ids.hi_id
    OFFSET 0  -- kept a subquery, so the id bounds are known before the key is read
) AS t
-- no time bound inside: the seed index could walk it (queries._minute_rows)
WHERE t.timestamp >= w.lo AND t.timestamp < w.hi
ORDER BY 1, 2, 3
"""


def window_lists(
    conn: Connection,
    windows: Sequence[tuple[str, datetime, datetime]],
    market: Market = DEFAULT_MARKET,
) -> list[list[BlockTrade]]:
    """`window_list` of several short windows ``(symbol, start, end)`` (a minute or two each:
    read whole, not through cursors), their blocks and rows in one round trip."""
    found: list[list[BlockTrade]] = [[] for _ in windows]
    asked = [(i, w) for i, w in enumerate(windows) if w[1] < w[2]]
    if not asked:
        return found
    params = {
        "symbols": [symbol for _, (symbol, _, _) in asked],
        "starts": [start.astimezone(UTC) for _, (_, start, _) in asked],
        "ends": [end.astimezone(UTC) for _, (_, _, end) in asked],
        "market": market.number,
    }
    with conn.pipeline():
        blocks_cur = conn.execute(WINDOWS_BLOCKS_SQL, params)
        rows_cur = conn.execute(WINDOWS_ROWS_SQL, params)
        block_rows, row_rows = blocks_cur.fetchall(), rows_cur.fetchall()
    blocks: dict[int, list[BlockTrade]] = {}
    rows: dict[int, list[BlockTrade]] = {}
    for n, *columns in block_rows:
        _, start, end = asked[n - 1][1]
        blocks.setdefault(n, []).extend(block_trades(_block(columns), start, end))
    for n, ts, trade_id, price, quantity, maker in row_rows:
        rows.setdefault(n, []).append(
            BlockTrade(ts.astimezone(UTC), trade_id, price, quantity, maker)
        )
    for n, (index, _) in enumerate(asked, start=1):
        found[index] = list(merged(rows.get(n, []), blocks.get(n, [])))
    return found


def nearest_in(
    blocks: Iterable[Block], ts: datetime
) -> tuple[BlockTrade | None, BlockTrade | None]:
    """The last trade at or before ``ts`` and the first after it, in ``blocks``; only the times
    are decoded in full, the two trades alone otherwise."""
    limit = (ts.astimezone(UTC) - EPOCH) // timedelta(microseconds=1) // 1000
    earlier: BlockTrade | None = None
    later: BlockTrade | None = None
    for block in blocks:
        times = epoch_ms(block)
        cut = bisect_right(times, limit)  # times[:cut] are at or before ts
        if cut:
            found = trade_at(block, cut - 1, times)
            if earlier is None or found > earlier:
                earlier = found
        if cut < len(times):
            found = trade_at(block, cut, times)
            if later is None or found < later:
                later = found
    return earlier, later


#: The block holding a trade id whose trade is in the minute before `before`: the block
#: starting last before then among those starting at or below the id (ids grow with time).
ID_BLOCK_SQL = f"""
SELECT {BLOCK_COLUMNS} FROM trade_blocks
WHERE market = %(market)s AND symbol = %(symbol)s AND first_ts < %(before)s
  AND first_id <= %(id)s
ORDER BY first_ts DESC, first_id DESC LIMIT 1
"""


def time_of(
    conn: Connection,
    symbol: str,
    trade_id: int,
    minute: datetime,
    market: Market = DEFAULT_MARKET,
) -> datetime | None:
    """The time of a trade stored in a block, known to be in the UTC minute ``minute``."""
    params = {
        "symbol": symbol,
        "id": trade_id,
        "before": minute + timedelta(minutes=1),
        "market": market.number,
    }
    row = conn.execute(ID_BLOCK_SQL, params).fetchone()
    if row is None:
        return None
    block = _block(row)
    ids = trade_ids(block)
    index = bisect_left(ids, trade_id)
    if index == len(ids) or ids[index] != trade_id:
        return None
    return EPOCH + epoch_ms(block)[index] * MILLISECOND


def blocks_around(
    conn: Connection,
    symbols: Sequence[str],
    ts: datetime,
    *,
    before: bool,
    market: Market = DEFAULT_MARKET,
) -> dict[str, list[Block]]:
    """Per symbol, the (at most two) blocks holding its nearest trades on each side of ``ts``."""
    found: dict[str, list[Block]] = {}
    params = {"symbols": list(symbols), "ts": ts, "before": before, "market": market.number}
    for row in conn.execute(AROUND_SQL, params).fetchall():
        block = _block(row)
        found.setdefault(block.symbol, []).append(block)
    return found


def last_blocks(
    conn: Connection, above: dict[str, int | None], market: Market = DEFAULT_MARKET
) -> dict[str, Block]:
    """Per symbol of ``above``, its last block if that holds an id higher than ``above``'s."""
    params = {"symbols": list(above), "above": list(above.values()), "market": market.number}
    rows = conn.execute(LAST_BLOCKS_SQL, params).fetchall()
    return {row[1]: _block(row) for row in rows}


def block_symbols(conn: Connection, market: Market = DEFAULT_MARKET) -> list[str]:
    """Every symbol of `market` with at least one block, alphabetically."""
    rows = conn.execute(BLOCK_SYMBOLS_SQL, {"market": market.number}).fetchall()
    return [row[0] for row in rows]


def merged(rows: Iterable[BlockTrade], blocks: Iterable[BlockTrade]) -> Iterator[BlockTrade]:
    """Two trade streams, each in trade order, as one; an id in both is given once."""
    previous: int | None = None
    for trade in heapq.merge(rows, blocks):
        if trade.trade_id != previous:
            yield trade
        previous = trade.trade_id
