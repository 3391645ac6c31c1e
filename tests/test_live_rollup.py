"""The live writer keeps the rollup itself (#18 item 4): its batches go straight into their
month's partition, past the rollup trigger, and their minutes are upserted by the writer; the
rollup stays equal to a recompute from `trades` through duplicates, concurrent writers of the
same minutes, a month boundary, a month without a partition and a month pruned meanwhile."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from decimal import Context, Decimal, localcontext
from typing import Any

import psycopg

from binprice.db.copy import CopyEncoder
from binprice.db.liverollup import roll_up
from binprice.db.partitions import ensure_partitions, prune
from binprice.db.writer import TradeWriter
from binprice.exchange.protocol import WireTrade
from binprice.ingest.sink import is_conflict
from binprice.ingest.spool import decode_chunk, encode_chunk
from binprice.markets import Market

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
#: 2026-01-31 23:50 UTC: ten minutes before the month ends.
NEAR_FEB_MS = int(FEB.timestamp() * 1000) - 10 * 60_000

MINUTES = (
    "market, symbol, minute, trades, volume, notional, high, low, first_id, last_id, open, close"
)
#: The rollup as the recompute trigger (0005) builds it: sorted, from the stored rows.
RECOMPUTE = """
SELECT market, symbol, date_trunc('minute', timestamp, 'UTC') AS minute, count(*),
       sum(quantity), sum(price * quantity), max(price), min(price), min(trade_id), max(trade_id),
       (array_agg(price ORDER BY trade_id))[1], (array_agg(price ORDER BY trade_id DESC))[1]
FROM trades GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def _rollup(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {MINUTES} FROM trade_minutes ORDER BY 1, 2, 3").fetchall()


def _recompute(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(RECOMPUTE).fetchall()


def _trades(seed: int, first_ms: int, span_ms: int, count: int) -> list[WireTrade]:
    """Two symbols, ids in time order, several trades a millisecond, recurring prices (ties for
    high/low) and quantities with eight decimals."""
    rng = random.Random(seed)
    out = []
    for symbol in ("BTCUSDT", "RAREUSDT"):
        times = sorted(first_ms + rng.randrange(span_ms) for _ in range(count))
        for i, ms in enumerate(times):
            price = Decimal(rng.choice(["100.00", "100.01", "99.99", "100.00000001"]))
            qty = Decimal(rng.randrange(1, 10**9)) / Decimal(10**8)
            out.append(WireTrade(symbol, 1000 + i, price, qty, ms, rng.random() < 0.5))
    rng.shuffle(out)  # arrival order is not id order across symbols
    return out


def _later(t: WireTrade, ids: int, ms: int) -> WireTrade:
    return WireTrade(
        t.symbol, t.trade_id + ids, t.price, t.quantity, t.time_ms + ms, t.is_buyer_maker
    )


def _naive(trades: list[WireTrade]) -> dict[tuple[str, int], tuple[object, ...]]:
    groups: dict[tuple[str, int], list[WireTrade]] = {}
    for t in trades:
        groups.setdefault((t.symbol, t.time_ms // 60_000), []).append(t)
    out = {}
    for key, ts in groups.items():
        ts.sort(key=lambda t: t.trade_id)
        with localcontext(Context(prec=100)):
            notional = sum(t.price * t.quantity for t in ts)
        out[key] = (
            len(ts),
            sum(t.quantity for t in ts),
            notional,
            ts[0].price,
            ts[-1].price,
            max(t.price for t in ts),
            min(t.price for t in ts),
            ts[0].trade_id,
            ts[-1].trade_id,
        )
    return out


def test_roll_up_is_each_minutes_aggregate_with_an_exact_notional() -> None:
    trades = _trades(1, NEAR_FEB_MS, 20 * 60_000, 500)
    rows = roll_up(trades)
    naive = _naive(trades)
    assert {(r[0], r[1]) for r in rows} == set(naive)
    for s, m, n, volume, notional, high, low, first, last, open_, close in rows:
        assert (n, volume, notional, open_, close, high, low, first, last) == naive[s, m]
    # 28 digits (Python's default context) would round this notional; PostgreSQL does not.
    big = [WireTrade("X", 1, Decimal("123456.12345678"), Decimal("9876543.87654321"), 0, False)]
    (row,) = roll_up(big)
    assert str(row[4]) == "1219319820148.8230605022374638"  # 12345612345678 * 987654387654321
    assert Decimal("123456.12345678") * Decimal("9876543.87654321") != row[4]


def test_a_spooled_batch_keeps_its_rollup_and_an_old_chunk_has_none() -> None:
    batch = CopyEncoder(rollup=True).batch(_trades(2, NEAR_FEB_MS, 60_000, 50))
    assert batch.minutes
    back = decode_chunk(encode_chunk(batch))
    assert back.minutes == batch.minutes
    old = CopyEncoder().batch(_trades(2, NEAR_FEB_MS, 60_000, 50))  # as imports encode
    assert old.minutes is None
    assert decode_chunk(encode_chunk(old)).minutes is None


def _make_months(url: str, start: datetime, end: datetime) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_partitions(conn, start, end)


async def test_the_live_writer_rolls_up_its_batches_itself_and_the_trigger_not_again(
    database_url: str,
) -> None:
    """With the rollup trigger disabled the rollup is still whole (the writer keeps it), and
    with it enabled nothing is counted twice (a partition's COPY fires no trigger of trades)."""
    _make_months(database_url, JAN, FEB)
    encoder = CopyEncoder(rollup=True)
    jan = _trades(3, NEAR_FEB_MS - 3600_000, 3600_000, 400)
    writer = await TradeWriter.connect(database_url)
    try:
        await writer.write(encoder.batch(jan[:300]))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE trades DISABLE TRIGGER trades_minutes_insert")
        await writer.write(encoder.batch(jan[300:]))
    finally:
        await writer.close()
    assert len(_recompute(database_url)) > 60
    assert _rollup(database_url) == _recompute(database_url)
    with psycopg.connect(database_url) as conn:  # statement triggers are not cloned
        found = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'trades_2026_01'::regclass"
        ).fetchone()
    assert found == (0,)


async def test_live_rollup_stays_exact_through_duplicates_concurrent_writers_and_month_ends(
    database_url: str,
) -> None:
    """Three writers store overlapping random batches of the same minutes at once, across the
    end of January, into February (its partition) and March (none: DEFAULT): every trade is
    stored once and the rollup equals a recompute from the rows."""
    _make_months(database_url, JAN, MAR)
    trades = _trades(4, NEAR_FEB_MS, 60 * 60_000, 1500)  # 50 of its 60 minutes in February
    late = [_later(t, 10**6, 0) for t in _trades(5, int(MAR.timestamp() * 1000), 600_000, 100)]
    everything = trades + late
    rng = random.Random(6)
    conflicts: list[BaseException] = []

    async def run(seed: int) -> None:
        rng = random.Random(seed)
        encoder = CopyEncoder(rollup=True)
        writer = await TradeWriter.connect(database_url)
        try:
            for _ in range(12):
                start = rng.randrange(len(everything))
                batch = encoder.batch(everything[start : start + rng.randint(1, 600)])
                while True:  # a deadlock with another writer is retried, as the sink does
                    try:
                        await writer.write(batch)
                        break
                    except psycopg.Error as exc:
                        if not is_conflict(exc):
                            raise
                        conflicts.append(exc)
        finally:
            await writer.close()

    await asyncio.gather(*(run(rng.randrange(10**6)) for _ in range(3)))
    writer = await TradeWriter.connect(database_url)
    try:  # whatever the random batches left out, re-delivered in two batches
        await writer.write(CopyEncoder(rollup=True).batch(everything[: len(everything) // 2]))
        await writer.write(CopyEncoder(rollup=True).batch(everything[len(everything) // 2 :]))
    finally:
        await writer.close()
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM trades").fetchone()
        default = conn.execute("SELECT count(*) FROM trades_default").fetchone()
        feb = conn.execute("SELECT count(*) FROM trades_2026_02").fetchone()
    assert stored == (len(everything),)
    assert default == (len(late),)
    assert feb is not None and feb[0] > 0
    assert _rollup(database_url) == _recompute(database_url)


async def test_a_month_pruned_under_the_writer_goes_through_trades(database_url: str) -> None:
    """A writer that had seen January's partition writes a late January trade after January
    was pruned: no error, and the rollup is the recompute."""
    _make_months(database_url, JAN, MAR)
    encoder = CopyEncoder(Market.USDM, rollup=True)
    trades = _trades(7, NEAR_FEB_MS - 3600_000, 3600_000, 50)
    writer = await TradeWriter.connect(database_url, Market.USDM)
    try:
        await writer.write(encoder.batch(trades[:50]))
        with psycopg.connect(database_url, autocommit=True) as conn:
            prune(conn, FEB)
        await writer.write(encoder.batch(trades[50:]))
        await writer.write(encoder.batch([_later(t, 10**6, 3600_000) for t in trades]))
    finally:
        await writer.close()
    assert _rollup(database_url) == _recompute(database_url)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM trades WHERE market = 1").fetchone() == (150,)
