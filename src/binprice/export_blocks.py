"""Exports of windows that touch a compressed month: blocks decoded here, formatted as text.

`binprice.export` streams a window that lies in row months with ``COPY … TO STDOUT`` (the
server formats). A compressed month's trades are in `trade_blocks`; formatting them on the server
would first rebuild every ``numeric`` from its integers, which caps the rate well below a
million trades a second (docs/storage-design.md). So the blocks are fetched as they are stored
(integers) and each trade is formatted here, by integer and string work only: a decimal is its
scaled integer with the point put in (exact, the stored number of decimals), a time is a
cached second plus its milliseconds. Late rows of a compressed month (and the row months of a
window that spans both) come from `trades` as text and are merged in trade order
``(timestamp, trade_id)``; an id found in both is written once.

Every format gives the same bytes as the row path: tests/test_compressed_reads.py compares them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import IO, Any

import psycopg

from binprice.compressed.codec import Block, CodecTrade, decode_block
from binprice.compressed.texts import BinanceLines, LineFormat, texts_key
from binprice.db.blockcopy import copied_blocks, rows_exist
from binprice.db.blockreads import (
    EPOCH,
    MILLISECOND,
    compressed_catalog,
    decimal_text,
    to_ms,
    window_blocks,
    window_trades,
)
from binprice.db.export import ROW_TEXT_COLUMNS, ProgressCounter, copy_out, window_rows
from binprice.markets import DEFAULT_MARKET, Market

Connection = psycopg.Connection[Any]

#: One trade as text fields, the codec's trade: (id, price, quantity, epoch ms, is_buyer_maker).
TextTrade = CodecTrade
#: Formats one symbol's trades into lines.
Lines = Callable[[str, list[TextTrade]], list[str]]

#: Formats a block's trades of a window at once (`binprice.compressed.texts`).
BlockLines = LineFormat | BinanceLines

#: Trades decoded per write: a few blocks, so memory stays small and writes stay large.
CHUNK_TRADES = 20_000
#: Trades of consecutive blocks formatted together (`LineFormat.batch`): enough that the work
#: per block is spread thin, few enough that a run's columns stay in the CPU's caches
#: (measured: 4,000 a little faster than 1,000 or 20,000).
RUN_TRADES = 4_000


MINUTE_MS = 60_000


@cache
def _minute_tail() -> list[str]:
    """``SS.mmmZ`` for each millisecond of a minute (made once, on the first export)."""
    return [f"{s:02d}.{m:03d}Z" for s in range(60) for m in range(1000)]


class _Iso:
    """ISO 8601 UTC with milliseconds and Z, as ``to_char(…'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')``:
    the minute's text made once per minute, the rest (``SS.mmmZ``) looked up in a table of a
    minute's 60,000 milliseconds, so a trade's time costs two lookups."""

    def __init__(self) -> None:
        self._tail = _minute_tail()
        self._minutes: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        minute, rest = divmod(ms, MINUTE_MS)
        prefix = self._minutes.get(minute)
        if prefix is None:
            moment = EPOCH + minute * MINUTE_MS * MILLISECOND
            prefix = self._minutes[minute] = f"{moment:%Y-%m-%dT%H:%M:}"
        return prefix + self._tail[rest]


def block_texts(block: Block, lo_ms: int, hi_ms: int) -> list[TextTrade]:
    """The block's trades in ``[lo_ms, hi_ms)`` as text fields, in trade order (the codec's
    decoding: integers and strings only)."""
    rows = decode_block(block)
    if block.first_ms < lo_ms or block.last_ms >= hi_ms:
        rows = [row for row in rows if lo_ms <= row[3] < hi_ms]
    return rows


def window_texts(
    conn: Connection, symbol: str, start: datetime, end: datetime, market: Market = DEFAULT_MARKET
) -> Iterator[list[TextTrade]]:
    """Chunks of one symbol's trades in ``[start, end)`` from rows and blocks, in trade order."""
    lo_ms, hi_ms = to_ms(start), to_ms(end)
    blocks = _block_chunks(conn, symbol, (start, end), (lo_ms, hi_ms), market)
    rows = _row_chunks(conn, symbol, start, end, market)
    first_rows = next(rows, None)
    if first_rows is None:  # the usual case: a compressed month without late rows
        yield from blocks
        return
    previous = None
    chunk: list[TextTrade] = []
    for trade in heapq.merge(_chain(first_rows, rows), _flat(blocks), key=_order):
        if trade[0] == previous:
            continue
        previous = trade[0]
        chunk.append(trade)
        if len(chunk) >= CHUNK_TRADES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _order(trade: TextTrade) -> tuple[int, int]:
    return trade[3], trade[0]


def _flat(chunks: Iterator[list[TextTrade]]) -> Iterator[TextTrade]:
    for chunk in chunks:
        yield from chunk


def _chain(first: list[TextTrade], rest: Iterator[list[TextTrade]]) -> Iterator[TextTrade]:
    yield from first
    yield from _flat(rest)


def _block_chunks(
    conn: Connection,
    symbol: str,
    window: tuple[datetime, datetime],
    bounds_ms: tuple[int, int],
    market: Market,
) -> Iterator[list[TextTrade]]:
    (start, end), (lo_ms, hi_ms) = window, bounds_ms
    chunk: list[TextTrade] = []
    for block in window_blocks(conn, symbol, start, end, market):
        chunk.extend(block_texts(block, lo_ms, hi_ms))
        if len(chunk) >= CHUNK_TRADES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _row_chunks(
    conn: Connection, symbol: str, start: datetime, end: datetime, market: Market
) -> Iterator[list[TextTrade]]:
    batches = window_rows(
        conn, symbol, start, end, ROW_TEXT_COLUMNS, cursor="binprice_rows", market=market
    )
    for batch in batches:
        yield [(int(i), p, q, int(ms), bool(m)) for ms, i, p, q, m in batch]


def csv_lines(symbol: str, trades: list[TextTrade]) -> list[str]:
    """``symbol,trade_id,price,quantity,timestamp,is_buyer_maker`` lines."""
    iso = _Iso()
    return [
        f"{symbol},{i},{p},{q},{iso(ms)},{'true' if m else 'false'}\n" for i, p, q, ms, m in trades
    ]


def ndjson_lines(symbol: str, trades: list[TextTrade]) -> list[str]:
    """One JSON object a line, keys as the CSV's, decimals as strings."""
    iso = _Iso()
    head = f'{{"symbol":"{symbol}","trade_id":'
    return [
        f'{head}{i},"price":"{p}","quantity":"{q}","timestamp":"{iso(ms)}",'
        f'"is_buyer_maker":{"true" if m else "false"}}}\n'
        for i, p, q, ms, m in trades
    ]


def binance_lines(microseconds_from: datetime, quote_decimals: int) -> Lines:
    """Binance's archive CSV lines (see `binprice.export_binance`): quote quantity rounded half
    away from zero to `quote_decimals`, time in µs from `microseconds_from` on."""
    micros_from = to_ms(microseconds_from)

    def lines(symbol: str, trades: list[TextTrade]) -> list[str]:
        del symbol  # the layout has no symbol column
        return [
            f"{i},{p},{q},{_quote(p, q, quote_decimals)},"
            f"{ms * 1000 if ms >= micros_from else ms},{'True' if m else 'False'},True\n"
            for i, p, q, ms, m in trades
        ]

    return lines


def _quote(price: str, quantity: str, decimals: int) -> str:
    """``round(price * quantity, decimals)`` as PostgreSQL prints it, by integer arithmetic."""
    p_int, _, p_frac = price.partition(".")
    q_int, _, q_frac = quantity.partition(".")
    scale = len(p_frac) + len(q_frac)
    product = int(p_int + p_frac) * int(q_int + q_frac)
    if scale > decimals:
        drop = 10 ** (scale - decimals)
        product = (product + drop // 2) // drop  # positive: half up is half away from zero
    else:
        product *= 10 ** (decimals - scale)
    return decimal_text(product, decimals)


#: The row path's ``COPY``: a format's SELECT list and COPY options (`binprice.db.export`).
RowCopy = tuple[str, str]


def write_texts(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    lines: Lines,
    blocks: BlockLines,
    rows: RowCopy | None = None,
    out: IO[bytes],
    counter: ProgressCounter,
    market: Market = DEFAULT_MARKET,
) -> None:
    """Write one symbol's window (rows and blocks) to ``out``, month by month: a compressed
    month without late rows of the symbol whole blocks at a time (``blocks``, read by one
    binary COPY), a compressed month with late rows trade by trade merged with them
    (``lines``), and the months between compressed ones by ``rows`` (the row path's COPY,
    the server formats) when given, else as the late rows."""
    months = compressed_catalog(conn, market).months
    # The rows' and the blocks' reads all see this one snapshot.
    with conn.transaction():
        for lo, hi, compressed in _segments(months, start, end):
            if compressed and not rows_exist(conn, symbol, lo, hi, market):
                lo_ms, hi_ms = to_ms(lo), to_ms(hi)
                for run in _runs(copied_blocks(conn, symbol, lo, hi, market)):
                    text, count = blocks.batch(run, lo_ms, hi_ms)
                    out.write(text.encode())
                    counter.add(count)
            elif not compressed and rows is not None:
                params = {"symbol": symbol, "start": lo, "end": hi, "market": market.number}
                copy_out(conn, *rows, params, out, counter=counter)
            else:
                for chunk in window_texts(conn, symbol, lo, hi, market):
                    out.write("".join(lines(symbol, chunk)).encode())
                    counter.add(len(chunk))


def _runs(blocks: Iterable[Block]) -> Iterator[list[Block]]:
    """Consecutive blocks of one `texts_key`, about `RUN_TRADES` trades a run: formatted
    together, so the work per block (and per write) is paid once per run."""
    run: list[Block] = []
    held = 0
    key = None
    for block in blocks:
        if run and (held >= RUN_TRADES or texts_key(block) != key):
            yield run
            run, held = [], 0
        if not run:
            key = texts_key(block)
        run.append(block)
        held += block.trades
    if run:
        yield run


def _segments(
    months: Iterable[datetime], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, bool]]:
    """``[start, end)`` cut at the edges of the compressed ``months``: (from, to, compressed)."""
    spans: list[tuple[datetime, datetime, bool]] = []
    at = start
    for month in sorted(months):
        following = (month + timedelta(days=32)).replace(day=1)
        if following <= at or month >= end:
            continue
        if month > at:
            spans.append((at, month, False))
        spans.append((max(month, at), min(following, end), True))
        at = min(following, end)
    if at < end:
        spans.append((at, end, False))
    return spans


def window_extents(
    conn: Connection, symbol: str, start: datetime, end: datetime, market: Market = DEFAULT_MARKET
) -> tuple[int, int, int, int] | None:
    """As `binprice.db.export.decimal_extents`, over rows and blocks: the largest scale and most
    integer digits of price, then of quantity (None without trades)."""
    found: tuple[int, int, int, int] | None = None
    for trade in window_trades(conn, symbol, start, end, market):
        (price_scale, price_digits), (qty_scale, qty_digits) = (
            _extent(trade.price),
            _extent(trade.quantity),
        )
        if found is None:
            found = (price_scale, price_digits, qty_scale, qty_digits)
        else:
            found = (
                max(found[0], price_scale),
                max(found[1], price_digits),
                max(found[2], qty_scale),
                max(found[3], qty_digits),
            )
    return found


def _extent(value: Decimal) -> tuple[int, int]:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0), len(str(int(abs(value))))
