"""trade_blocks on a real server: blocks written by binary COPY read back equal, by time and
by id, and the `trades_all` view decodes them to the exact rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from binprice.compressed.codec import CodecTrade, decode_block, encode_blocks
from binprice.db.blocks import (
    ensure_block_month,
    from_ms,
    read_blocks,
    read_blocks_by_id,
    to_ms,
    trades_of,
    write_blocks,
)

MONTH = datetime(2026, 4, 1, tzinfo=UTC)
START = to_ms(MONTH)


def tape() -> list[CodecTrade]:
    """Two days: a busy stretch, an id jump, digits that change, a huge quantity."""
    trades: list[CodecTrade] = []
    tid = 1_000
    for i in range(3000):
        tid += 1 if i % 500 else 7
        price = f"{73000 + (i % 37) * 0.01:.8f}" if i < 2000 else f"{0.5 + i / 1e6:.4f}"
        qty = "92233720368.54775807" if i == 1234 else f"{(i % 13) * 0.001:.8f}"
        trades.append((tid, price, qty, START + i * 55_000, i % 3 == 0))
    return trades


def test_blocks_written_read_back_equal_by_time_and_by_id(database_url: str) -> None:
    """write_blocks then read_blocks / read_blocks_by_id give the very blocks."""
    blocks = encode_blocks("BTCUSDT", tape(), dense=False)
    with psycopg.connect(database_url) as conn:
        ensure_block_month(conn, MONTH)
        assert write_blocks(conn, blocks) == len(blocks)
        every = read_blocks(conn, "BTCUSDT", MONTH, MONTH + timedelta(days=31))
        assert every == blocks
        day2 = read_blocks(conn, "BTCUSDT", MONTH + timedelta(days=1), MONTH + timedelta(days=2))
        assert day2 == [
            b
            for b in blocks
            if b.last_ms >= START + 86_400_000 and b.first_ms < START + 2 * 86_400_000
        ]
        by_id = read_blocks_by_id(conn, "BTCUSDT", 2_600, 2_700)
        assert by_id == [b for b in blocks if b.first_id <= 2_700 and b.last_id >= 2_600]
        assert read_blocks(conn, "ETHUSDT", MONTH, MONTH + timedelta(days=31)) == []


def test_trades_all_view_decodes_blocks_to_the_exact_rows(database_url: str) -> None:
    """The SQL view gives each trade's id, numeric (text for text), time and side."""
    trades = tape()
    blocks = encode_blocks("BTCUSDT", trades, dense=True)
    with psycopg.connect(database_url) as conn:
        ensure_block_month(conn, MONTH)
        write_blocks(conn, blocks)
        rows = conn.execute(
            'SELECT trade_id, price::text, quantity::text, "timestamp", is_buyer_maker '
            'FROM trades_all ORDER BY "timestamp", trade_id'
        ).fetchall()
    want = [(t, p, q, from_ms(ms), m) for t, p, q, ms, m in trades]
    assert rows == want
    decoded = [row for b in blocks for row in trades_of(b)]
    assert [(r[1], r[2], r[3]) for r in decoded[:2]] == [
        (trades[0][0], Decimal(trades[0][1]), Decimal(trades[0][2])),
        (trades[1][0], Decimal(trades[1][1]), Decimal(trades[1][2])),
    ]
    assert [t for b in blocks for t in decode_block(b)] == trades


def test_month_partitions_compress_blocks_in_line(database_url: str) -> None:
    """A month of trade_blocks has the 128-byte TOAST target and MAIN storage for arrays."""
    with psycopg.connect(database_url) as conn:
        name = ensure_block_month(conn, MONTH)
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", (name,)
        ).fetchone()
        storage = conn.execute(
            "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname IN ('ids', 'side', 'ms', 'price', 'qty') ORDER BY attname",
            (name,),
        ).fetchall()
    assert options == (["toast_tuple_target=128"],)
    assert storage == [(c, "m") for c in ("ids", "ms", "price", "qty", "side")]
