"""Export of compressed months a block at a time (#18 item 3): the same bytes as trade by trade.

`binprice.compressed.texts` formats a whole block column by column and `binprice.db.blockcopy`
reads the blocks by a binary COPY; `binprice.export_blocks` keeps the one-trade-at-a-time
formatting (`csv_lines`, `ndjson_lines`, `binance_lines`) for windows with late rows. Here the
two formatters are compared on blocks made by the codec from awkward trades (ids with holes,
ids below 1,000 and across thousands, sparse blocks over many minutes, windows that cut
blocks, quantities beyond 32 bits, Binance's switch to microseconds), the COPY parser on
its stream cut at every byte, and a window across a compressed and a row month is exported
from both forms.
"""

from __future__ import annotations

import io
import os
import random
import stat
import threading
from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import binprice
from binprice.compressed.codec import Block, CodecTrade, encode_blocks
from binprice.compressed.texts import BinanceLines, _plain_run, csv_format, ndjson_format
from binprice.db.blockcopy import WINDOW_BLOCKS_COPY, copied_blocks, parse_blocks
from binprice.db.blockreads import to_ms, window_blocks, window_lists, window_trades
from binprice.db.compress import compress_month
from binprice.export_binance import MICROSECONDS_FROM, QUOTE_DECIMALS
from binprice.export_blocks import binance_lines, block_texts, csv_lines, ndjson_lines
from tests.trades_data import Row, twin_databases

DAY_MS = 86_400_000


def _tape(
    rng: random.Random, *, first_id: int, start_ms: int, count: int, gaps: tuple[int, ...]
) -> list[CodecTrade]:
    trades, trade_id, ms, tick = [], first_id, start_ms, 7_310_930
    for _ in range(count):
        tick += rng.choice((-3, -1, 0, 0, 1, 2))
        qty = rng.choice((10**5, rng.randint(1, 10**9), rng.randint(10**10, 10**13)))
        price = f"{tick // 100}.{tick % 100:02d}000000"
        quantity = f"{qty // 10**8}.{qty % 10**8:08d}"
        trades.append((trade_id, price, quantity, ms, rng.random() < 0.5))
        trade_id += rng.choice(gaps)
        ms += rng.choice((0, 0, 1, 7, 250, 4_000, 70_000))
    return trades


def _blocks() -> list[list[Block]]:
    """Blocks of the codec: dense and sparse, consecutive ids and ids with holes, ids from
    below 1,000, around 2025-01-01 (Binance's µs switch), quantities up to 10^13 units; a
    list per tape and density, in trade order."""
    rng = random.Random(18)
    switch = to_ms(MICROSECONDS_FROM)
    blocks: list[list[Block]] = []
    for first_id, start_ms, gaps in (
        (1, switch - DAY_MS // 2, (1,)),
        (998_990, switch - 3_000_000, (1,)),
        (5_000_000_000, switch + 17, (1, 1, 2, 9)),
        (42, 1_700_000_000_000, (1, 3)),
    ):
        trades = _tape(rng, first_id=first_id, start_ms=start_ms, count=2_500, gaps=gaps)
        for dense in (True, False):
            blocks.append(encode_blocks("BTCUSDT", trades, dense=dense))
    return blocks


TAPES = _blocks()
BLOCKS = [block for tape in TAPES for block in tape]
#: Windows: everything, and cuts inside blocks at both ends.
WINDOWS = [(0, 2**62), *((b.first_ms + 1, b.last_ms) for b in BLOCKS[::29])]
#: Each format's block formatter beside its trade-by-trade lines.
FORMATS = pytest.mark.parametrize(
    ("fast", "slow"),
    [
        (csv_format(), csv_lines),
        (ndjson_format(), ndjson_lines),
        (
            BinanceLines(to_ms(MICROSECONDS_FROM), QUOTE_DECIMALS),
            binance_lines(MICROSECONDS_FROM, QUOTE_DECIMALS),
        ),
    ],
    ids=["csv", "ndjson", "binance"],
)


@FORMATS
def test_a_block_at_once_gives_the_lines_of_trade_by_trade(fast: object, slow: object) -> None:
    """Each format's block text equals the per-trade lines, for every block and window."""
    assert any(b.ids is not None for b in BLOCKS) and any(b.ids is None for b in BLOCKS)
    assert any(max(b.qty) >= 2**32 for b in BLOCKS)
    assert any(b.last_ms // 60_000 != b.first_ms // 60_000 for b in BLOCKS)
    written = 0
    for lo, hi in WINDOWS:
        for block in BLOCKS:
            text, count = fast.lines(block, lo, hi)  # type: ignore[attr-defined]
            expected = slow("BTCUSDT", block_texts(block, lo, hi))  # type: ignore[operator]
            assert text == "".join(expected)
            assert count == len(expected)
            written += count
    assert written > 20_000  # the whole window alone holds every trade of the four tapes


@FORMATS
@pytest.mark.parametrize("size", [2, 7, 60], ids=lambda n: f"{n}-blocks")
def test_runs_of_blocks_give_the_lines_of_trade_by_trade(
    fast: object, slow: object, size: int
) -> None:
    """Runs of consecutive blocks formatted at once (as export does) give the per-trade lines,
    for every window: runs of minute blocks with consecutive ids, and any others."""
    runs = [tape[i : i + size] for tape in TAPES for i in range(0, len(tape), size)]
    assert any(_plain_run(run, 0, 2**62) for run in runs)
    assert not all(_plain_run(run, 0, 2**62) for run in runs)
    for lo, hi in WINDOWS:
        for run in runs:
            text, count = fast.batch(run, lo, hi)  # type: ignore[attr-defined]
            expected = [
                line
                for b in run
                for line in slow("BTCUSDT", block_texts(b, lo, hi))  # type: ignore[operator]
            ]
            assert text == "".join(expected)
            assert count == len(expected)


def test_quantities_of_many_new_values_are_formatted_in_two_pieces_alike() -> None:
    """A run of mostly new quantities of 8 decimals (two pieces each, no cache) and then one
    of repeated ones (the cache) give the per-trade lines."""
    rng = random.Random(7)
    start = 1_780_000_000_000
    trades = [
        (5_000 + i, "70000.12", f"{q // 10**8}.{q % 10**8:08d}", start + 90 * i, i % 2 == 0)
        for i, q in enumerate(rng.randint(1, 10**10) for _ in range(3_000))
    ]
    repeated = [
        (6_000 + i, "70000.12", "0.00100000", start + 90 * (3_000 + i), True) for i in range(500)
    ]
    fast = csv_format()
    for tape in (trades, repeated, trades):
        blocks = encode_blocks("BTCUSDT", tape, dense=True)
        text, count = fast.batch(blocks, 0, 2**62)
        assert text == "".join(csv_lines("BTCUSDT", tape))
        assert count == len(tape)


def _rows() -> list[Row]:
    rng = random.Random(3)
    rows, moment = [], datetime(2026, 1, 31, 23, 20, tzinfo=UTC)
    for trade_id in range(999_700, 1_003_700):  # January's end into February
        price = Decimal(rng.randint(6_000_000, 6_000_200)).scaleb(-2)
        quantity = Decimal(rng.randint(1, 10**12)).scaleb(-8)
        rows.append(Row("BTCUSDT", trade_id, price, quantity, moment, rng.random() < 0.5))
        moment += timedelta(milliseconds=rng.choice((0, 3, 900, 2_000)))
    return rows


ROWS = _rows()
JAN, FEB, MAR = (datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3))


@pytest.fixture(scope="module")
def pair(pg_admin_url: str, template_url: str) -> Iterator[tuple[str, str]]:
    """(rows URL, URL with January compressed by `db compress`, February rows)."""
    with twin_databases(pg_admin_url, JAN, MAR, ROWS) as urls:
        with psycopg.connect(urls[1], autocommit=True) as conn:
            compress_month(conn, JAN)
        yield urls


def test_the_copy_of_blocks_is_parsed_however_it_is_cut(pair: tuple[str, str]) -> None:
    """The binary COPY's blocks equal the cursor's, with the stream whole or cut anywhere."""
    params = {"symbol": "BTCUSDT", "start": JAN, "end": MAR, "market": 0}
    with psycopg.connect(pair[1]) as conn:
        with conn.transaction():
            blocks = list(window_blocks(conn, "BTCUSDT", JAN, MAR))
        assert len(blocks) > 1 and any(max(b.qty) >= 2**32 for b in blocks)
        expected = [_plain(b) for b in blocks]
        assert [_plain(b) for b in copied_blocks(conn, "BTCUSDT", JAN, MAR)] == expected
        with conn.cursor() as cur, cur.copy(WINDOW_BLOCKS_COPY, params) as copy:
            stream = b"".join(bytes(chunk) for chunk in copy)
    rng = random.Random(1)
    for cuts in ([1] * 600, [rng.randint(1, 5_000) for _ in range(200)]):
        chunks, at = [], 0
        for size in [*cuts, len(stream)]:
            chunks.append(stream[at : at + size])
            at += size
        assert [_plain(b) for b in parse_blocks(c for c in chunks if c)] == expected


def _plain(block: Block) -> tuple[object, ...]:
    return tuple(
        list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tobytes") else v
        for v in astuple(block)
    )


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "binance"])
def test_a_window_across_a_compressed_and_a_row_month_is_exported_alike(
    pair: tuple[str, str], fmt: str
) -> None:
    """Blocks for January, the row path's COPY for February: the bytes of the rows alone."""
    outs = []
    for url in pair:
        out = io.BytesIO()
        with binprice.connect(url) as store:
            store.export(["BTCUSDT"], JAN + timedelta(days=30, hours=23, minutes=55), MAR, fmt, out)
        outs.append(out.getvalue())
    assert outs[0] == outs[1]
    assert outs[0].count(b"\n") > 500


def test_short_windows_read_together_are_the_windows_read_one_by_one(
    pair: tuple[str, str],
) -> None:
    """`window_lists` (candles' partial end minutes, one round trip) gives each window's
    trades as `window_trades` does: blocks, rows, both, an empty and a reversed window."""
    edge = FEB - timedelta(seconds=70)
    windows = [
        ("BTCUSDT", edge, edge + timedelta(seconds=50)),  # blocks (January)
        ("BTCUSDT", FEB - timedelta(seconds=20), FEB + timedelta(seconds=40)),  # both
        ("BTCUSDT", FEB + timedelta(seconds=61), FEB + timedelta(seconds=119)),  # rows
        ("ETHUSDT", edge, FEB),  # no trades
        ("BTCUSDT", FEB, edge),  # empty
    ]
    with psycopg.connect(pair[1], autocommit=True) as conn:
        together = window_lists(conn, windows)
        one_by_one = [list(window_trades(conn, s, a, b)) if a < b else [] for s, a, b in windows]
    assert together == one_by_one
    assert all(together[:3]) and not any(together[3:])


@pytest.mark.parametrize("fmt", ["csv", "binance"])
def test_an_export_to_a_fifo_writes_into_it_and_leaves_it_a_fifo(
    pair: tuple[str, str], fmt: str, tmp_path: Path
) -> None:
    """`-o /dev/null` or a FIFO: written in place; a finished `.part` renamed over it would
    have left a regular file where /dev/null was (the benchmark's export did that)."""
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    keeper = os.open(fifo, os.O_RDWR)  # a writer until the end: the reader never blocks
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    try:
        with binprice.connect(pair[1]) as store:
            count = store.export(["BTCUSDT"], JAN, MAR, fmt, str(fifo))
    finally:
        os.close(keeper)
    reader.join()
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert count == len(ROWS) and got[0].count(b"\n") >= len(ROWS)
    assert not (tmp_path / "out.part").exists()
