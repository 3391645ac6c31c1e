"""The writer carries the market (#19): a futures batch goes into its market's rows through the
COPY fast path and through the staging fallback, the last stored id is the market's own, and the
advisory claim of a symbol is a claim of the symbol in a market."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from binprice.db.claims import claim_symbols
from binprice.db.copy import CopyEncoder
from binprice.db.writer import TradeWriter
from binprice.exchange.protocol import WireTrade
from binprice.markets import Market

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _trades(first: int, count: int, price: str = "100.5") -> list[WireTrade]:
    return [
        WireTrade(
            "BTCUSDT",
            first + i,
            Decimal(price),
            Decimal("0.001"),
            T0_MS + first + i,
            (first + i) % 2 == 0,
        )
        for i in range(count)
    ]


def _stored(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT market, trade_id, price::text FROM trades WHERE symbol = 'BTCUSDT' "
            "ORDER BY market, trade_id"
        ).fetchall()


def test_spot_copy_rows_are_unchanged_and_futures_rows_lead_with_the_market() -> None:
    (trade,) = _trades(7, 1)
    spot = CopyEncoder().encode([trade]).decode()
    usdm = CopyEncoder(Market.USDM).encode([trade]).decode()
    assert spot == "BTCUSDT\t7\t100.5\t0.001\t2026-01-01 00:00:00.007+00\tf\n"
    assert usdm == "1\t" + spot
    # A futures batch decodes back to the same trades (the spool and `-v` read them so).
    assert CopyEncoder(Market.COINM).batch([trade]).payload.decode().startswith("2\t")
    batch = CopyEncoder(Market.COINM).batch([trade])
    batch.trades = None
    assert batch.decoded() == [trade]


async def test_a_usdm_writer_stores_beside_spot_and_reads_its_own_last_trade(
    database_url: str,
) -> None:
    """Spot ids 1..3 and USD-M ids 1..5 of BTCUSDT: both stored; a second USD-M write
    overlapping the first (the staging fallback) adds only the new ids, in USD-M."""
    spot = await TradeWriter.connect(database_url)
    usdm = await TradeWriter.connect(database_url, Market.USDM)
    try:
        await spot.write(CopyEncoder().batch(_trades(1, 3, "90")))
        encoder = CopyEncoder(Market.USDM)
        inserted, _ = await usdm.write(encoder.batch(_trades(1, 5)))
        assert inserted == {"BTCUSDT": 5}
        inserted, _ = await usdm.write(encoder.batch(_trades(4, 4)))  # 4, 5 stored; 6, 7 new
        assert inserted == {"BTCUSDT": 2}
        assert (await spot.last_trades(("BTCUSDT",)))["BTCUSDT"][0] == 3
        assert (await usdm.last_trades(("BTCUSDT",)))["BTCUSDT"][0] == 7
        coinm = await TradeWriter.connect(database_url, Market.COINM)
        try:
            assert await coinm.last_trades(("BTCUSDT",)) == {}
        finally:
            await coinm.close()
    finally:
        await spot.close()
        await usdm.close()
    rows = _stored(database_url)
    assert [(m, i) for m, i, _ in rows] == [(0, 1), (0, 2), (0, 3)] + [(1, i) for i in range(1, 8)]
    assert {p for m, _, p in rows if m == 0} == {"90"}
    assert {p for m, _, p in rows if m == 1} == {"100.5"}


async def test_a_claim_is_of_a_symbol_in_a_market(database_url: str) -> None:
    """A spot run's claim of BTCUSDT does not stop a USD-M run of BTCUSDT from claiming its
    own; a second USD-M run is told."""
    first = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    second = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        assert await claim_symbols(first, ["BTCUSDT"]) == []
        assert await claim_symbols(second, ["BTCUSDT"], Market.USDM) == []
        assert await claim_symbols(second, ["BTCUSDT"]) == ["BTCUSDT"]
        assert await claim_symbols(first, ["BTCUSDT"], Market.USDM) == ["BTCUSDT"]
        assert await claim_symbols(first, ["BTCUSDT"], Market.COINM) == []
    finally:
        await first.close()
        await second.close()
