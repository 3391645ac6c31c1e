"""The compressed-month codec: decode(encode(trades)) gives back every trade, text for text,
whatever the ids, times, scales and sizes; and blocks are cut where the layout says."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binprice.compressed.codec import (
    DAY_MS,
    INT4_MAX,
    MINUTE_MS,
    SPARSE_BLOCK_TRADES,
    CodecTrade,
    UnencodableTrade,
    decode_block,
    decode_blocks,
    encode_blocks,
)

START = 1_775_001_600_000  # 2026-04-01 00:00 UTC


def decimal_text(units: int, decimals: int) -> str:
    """`units` times 10^-decimals as PostgreSQL prints a numeric with that many decimals."""
    return f"{Decimal(units).scaleb(-decimals).quantize(Decimal(1).scaleb(-decimals)):f}"


def roundtrip(trades: list[CodecTrade], *, dense: bool) -> list[CodecTrade]:
    return [t for b in encode_blocks("BTCUSDT", trades, dense=dense) for t in decode_block(b)]


def in_order(trades: list[CodecTrade]) -> list[CodecTrade]:
    return sorted(trades, key=lambda t: (t[3], t[0]))


@st.composite
def tapes(draw: st.DrawFn) -> list[CodecTrade]:
    """One symbol's trades: ids consecutive or not, times with gaps up to beyond 2^31 ms,
    prices and quantities at changing numbers of decimals, some huge."""
    count = draw(st.integers(1, 120))
    tid = draw(st.integers(0, 2**40))
    ms = START + draw(st.integers(0, DAY_MS))
    digits = draw(st.sampled_from((0, 2, 8)))
    trades: list[CodecTrade] = []
    for _ in range(count):
        tid += draw(st.sampled_from((1, 1, 1, 2, 1000, 2**33)))
        ms += draw(st.sampled_from((0, 0, 1, 15, 700, MINUTE_MS, DAY_MS, 2**31 + 5)))
        if draw(st.integers(0, 20)) == 0:
            digits = draw(st.sampled_from((0, 1, 2, 8, 12)))
        price = draw(st.integers(0, 10**15))
        qty = draw(st.one_of(st.integers(0, 10**9), st.integers(10**17, 9 * 10**18)))
        trades.append(
            (tid, decimal_text(price, digits), decimal_text(qty, digits), ms, draw(st.booleans()))
        )
    return trades


@settings(max_examples=300, deadline=None)
@given(tapes(), st.booleans())
def test_decode_of_encode_is_the_trades_text_for_text(
    trades: list[CodecTrade], dense: bool
) -> None:
    """Every trade comes back with its id, exact price and quantity text, ms and side."""
    assert roundtrip(trades, dense=dense) == in_order(trades)


@settings(max_examples=100, deadline=None)
@given(tapes())
def test_blocks_respect_their_integer_widths(trades: list[CodecTrade]) -> None:
    """Time and price deltas and id offsets fit int4, scaled values int8."""
    for block in encode_blocks("BTCUSDT", trades, dense=True):
        assert all(-(2**31) <= v <= INT4_MAX for v in (*block.ms, *block.price))
        assert all(0 <= v <= INT4_MAX for v in block.ids or ())
        assert all(abs(v) < 2**63 for v in (block.base_price, *block.qty))


def test_dense_blocks_are_utc_minutes_and_consecutive_ids_are_not_stored() -> None:
    """A busy tape: one block per minute, `ids` None, offsets from the block's first time."""
    trades = [
        (100 + i, "73109.30000000", "0.00100000", START + i * 100, i % 3 == 0) for i in range(1800)
    ]
    blocks = encode_blocks("BTCUSDT", trades, dense=True)
    assert [b.trades for b in blocks] == [600, 600, 600]
    assert {b.first_ms // MINUTE_MS for b in blocks} == {START // MINUTE_MS + k for k in range(3)}
    assert all(b.ids is None for b in blocks)
    first = blocks[0]
    assert (first.first_id, first.last_id, first.price_scale, first.price_digits) == (
        100,
        699,
        1,
        8,
    )
    assert (first.base_price, set(first.price), first.qty_scale) == (731093, {0}, 3)
    assert first.ms[:3] == [0, 100, 100]
    assert first.side[:4] == "1001"


def test_sparse_blocks_hold_a_thousand_trades_and_never_cross_a_day() -> None:
    """A rare symbol: blocks of up to 1,000 trades, cut at UTC midnight."""
    trades = [(i, "1.2340", "10", START + i * 60_000, False) for i in range(2 * 1440)]
    blocks = encode_blocks("RAREUSDT", trades, dense=False)
    assert [b.trades for b in blocks] == [SPARSE_BLOCK_TRADES, 440, SPARSE_BLOCK_TRADES, 440]
    assert blocks[2].first_ms == START + DAY_MS


def test_a_price_jump_beyond_int4_cuts_the_block_instead_of_overflowing() -> None:
    """Two trades a second apart whose scaled prices differ by more than 2^31 are two blocks."""
    trades = [(1, "0.00000001", "1", START, True), (2, "100000.00000001", "1", START + 1, True)]
    blocks = encode_blocks("X", trades, dense=True)
    assert len(blocks) == 2
    assert roundtrip(trades, dense=True) == trades


def test_a_change_of_digits_cuts_the_block() -> None:
    """`1.5` and `1.50000000` are different texts: each keeps its own digits."""
    trades = [(1, "1.5", "2", START, True), (2, "1.50000000", "2", START + 1, False)]
    assert len(encode_blocks("X", trades, dense=True)) == 2
    assert roundtrip(trades, dense=True) == trades


def test_a_quantity_beyond_int8_at_its_own_scale_is_refused() -> None:
    """Nothing is coded lossily: such a trade raises instead."""
    with pytest.raises(UnencodableTrade, match="trade 7"):
        encode_blocks("X", [(7, "1", "123456789012.12345678", START, True)], dense=True)


@settings(max_examples=50, deadline=None)
@given(st.lists(tapes(), min_size=1, max_size=4))
def test_decode_blocks_sharing_texts_equals_decode_block(tapes_: list[list[CodecTrade]]) -> None:
    """The shared text cache of decode_blocks changes nothing in what comes back."""
    blocks = [b for trades in tapes_ for b in encode_blocks("X", trades, dense=False)]
    assert list(decode_blocks(blocks)) == [decode_block(b) for b in blocks]


def test_the_catalog_names_spot_as_the_codec_does() -> None:
    """`db.catalog` keeps its own copy of Spot's market number, so that the questions over row
    months import nothing of the codec; the two must agree."""
    from binprice.compressed import codec
    from binprice.db import catalog

    assert catalog.MARKET_SPOT == codec.MARKET_SPOT
