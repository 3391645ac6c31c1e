"""`binprice ingest` end to end: the test exchange → the real pipeline → real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from binprice.db.copy import CopyEncoder
from binprice.ingest import IngestConfig, run_ingest
from binprice.ingest.recorder import Recorder
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from tests.fault_helpers import wait_until
from tests.ingest_helpers import as_rows, exchange_config, stored_rows

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def _config(ex: TestExchange, tmp_path: Path, **kw: Any) -> IngestConfig:
    return exchange_config(ex, tmp_path, kw.pop("symbols", SYMBOLS), **kw)


def _produced(ex: TestExchange, symbols: tuple[str, ...] = SYMBOLS) -> list:
    return [t for s in symbols for t in ex.produced(s)]


async def test_ingest_stores_exactly_the_trades_the_exchange_produced(
    database_url: str, tmp_path: Path
) -> None:
    """N trades over three symbols at full speed: the table equals the exchange's record."""
    per_symbol = 3000
    async with TestExchange(SYMBOLS, seed=7, rate=None, max_trades=per_symbol) as ex:
        config = _config(ex, tmp_path, max_trades=per_symbol * len(SYMBOLS))
        summary = await asyncio.wait_for(run_ingest(config, database_url), 60)
        produced = _produced(ex)
    assert len(produced) == per_symbol * len(SYMBOLS)
    assert stored_rows(database_url) == as_rows(produced)
    assert summary.stored == len(produced)
    assert summary.duplicates == 0


async def test_duplicates_resent_by_the_exchange_are_stored_once(
    database_url: str, tmp_path: Path
) -> None:
    """With 20 % of frames sent twice, every trade is stored exactly once."""
    faults = Faults(duplicate_fraction=0.2)
    async with TestExchange(SYMBOLS[:2], seed=3, rate=None, max_trades=2000, faults=faults) as ex:
        config = _config(ex, tmp_path, symbols=SYMBOLS[:2], max_trades=4000)
        summary = await asyncio.wait_for(run_ingest(config, database_url), 60)
        produced = _produced(ex, SYMBOLS[:2])
    assert stored_rows(database_url) == as_rows(produced)
    assert summary.duplicates > 0


async def test_restart_resumes_after_the_last_stored_trade(
    database_url: str, tmp_path: Path
) -> None:
    """A second run skips what the first stored and stores only new trades, none twice."""
    async with TestExchange(SYMBOLS[:1], seed=5, rate=2000) as ex:
        first = _config(ex, tmp_path, symbols=SYMBOLS[:1], max_trades=500)
        await asyncio.wait_for(run_ingest(first, database_url), 30)
        second = _config(ex, tmp_path, symbols=SYMBOLS[:1], max_trades=500)
        await asyncio.wait_for(run_ingest(second, database_url), 30)
        produced = {t.trade_id: t for t in ex.produced("BTCUSDT")}
    rows = stored_rows(database_url)
    ids = [r[1] for r in rows]
    assert len(ids) == len(set(ids))
    assert rows == as_rows([produced[i] for i in ids])
    # The second run starts where the first stopped: the downtime is backfilled from REST.
    assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_full_buffer_spills_to_disk_and_the_reader_keeps_reading(
    database_url: str, tmp_path: Path
) -> None:
    """With the table locked, trades beyond the memory limit go to the spool; after the lock
    is released everything is stored exactly once and the connection was never dropped."""
    stats = Recorder()
    stop = asyncio.Event()
    async with TestExchange(SYMBOLS[:2], seed=11, rate=3000) as ex:
        config = _config(ex, tmp_path, symbols=SYMBOLS[:2], memory_limit=500, max_batch=200)
        blocker = await psycopg.AsyncConnection.connect(database_url)
        await blocker.execute("LOCK TABLE trades IN EXCLUSIVE MODE")
        run = asyncio.create_task(run_ingest(config, database_url, stop=stop, recorder=stats))
        await wait_until(lambda: stats.snapshot().spilled_chunks >= 3, 10)
        assert list((tmp_path / "spool").rglob("*.spool"))
        await blocker.rollback()
        await blocker.close()
        spool = tmp_path / "spool"
        await wait_until(
            lambda: (
                stats.summary().stored >= stats.summary().spilled
                and not list(spool.rglob("*.spool"))
            ),
            20,
        )
        stop.set()
        summary = await asyncio.wait_for(run, 30)
        produced = {(t.symbol, t.trade_id): t for s in SYMBOLS[:2] for t in ex.produced(s)}
    rows = stored_rows(database_url)
    assert len(rows) == summary.stored == summary.received
    assert rows == as_rows([produced[(r[0], r[1])] for r in rows])
    assert summary.reconnects == 0
    assert not list((tmp_path / "spool").rglob("*.spool"))
    for symbol in SYMBOLS[:2]:
        ids = [r[1] for r in rows if r[0] == symbol]
        assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_copy_encoder_writes_exact_decimals_and_millisecond_utc() -> None:
    """Prices keep every digit; the timestamp text is UTC with milliseconds."""
    from decimal import Decimal

    from binprice.exchange.protocol import WireTrade

    trade = WireTrade(
        "BTCUSDT", 2**40, Decimal("0.00000001"), Decimal("12.50000000"), 1779941620983, True
    )
    assert CopyEncoder().encode([trade]) == (
        b"BTCUSDT\t1099511627776\t0.00000001\t12.50000000\t2026-05-28 04:13:40.983+00\tt\n"
    )


def test_copy_batch_groups_rows_by_symbol_in_arrival_order() -> None:
    """Interleaved symbols go out one symbol after another (first seen first), each symbol's
    trades in the order they arrived, with the same counts and newest trades."""
    from decimal import Decimal

    from binprice.exchange.protocol import WireTrade

    order = [
        "ETHUSDT 7",
        "BTCUSDT 3",
        "ETHUSDT 9",
        "BTCUSDT 2",
        "BNBUSDT 5",
        "ETHUSDT 8",
        "BTCUSDT 4",
    ]
    arrived = [
        WireTrade(symbol, int(tid), Decimal(tid), Decimal(1), 1779941620000 + int(tid), False)
        for symbol, tid in (key.split() for key in order)
    ]
    batch = CopyEncoder().batch(arrived)
    keys = [tuple(line.split("\t")[:2]) for line in batch.payload.decode().splitlines()]
    assert keys == [
        ("ETHUSDT", "7"),
        ("ETHUSDT", "9"),
        ("ETHUSDT", "8"),
        ("BTCUSDT", "3"),
        ("BTCUSDT", "2"),
        ("BTCUSDT", "4"),
        ("BNBUSDT", "5"),
    ]
    assert batch.counts == {"ETHUSDT": 3, "BTCUSDT": 3, "BNBUSDT": 1}
    assert {s: tid for s, (tid, _, _) in batch.latest.items()} == {
        "ETHUSDT": 9,
        "BTCUSDT": 4,
        "BNBUSDT": 5,
    }
    assert sorted(batch.decoded(), key=lambda t: (t.symbol, t.trade_id)) == sorted(
        arrived, key=lambda t: (t.symbol, t.trade_id)
    )


@pytest.mark.parametrize("bad", ["BTC\tUSDT", "BTC\nUSDT"], ids=["tab", "newline"])
def test_copy_encoder_refuses_symbols_that_would_break_copy(bad: str) -> None:
    """A control character in a symbol is refused rather than corrupting the COPY stream."""
    from decimal import Decimal

    from binprice.exchange.protocol import WireTrade

    with pytest.raises(ValueError, match="COPY control character"):
        CopyEncoder().encode([WireTrade(bad, 1, Decimal(1), Decimal(1), 0, False)])


async def test_symbols_are_spread_over_connections_of_limited_size(
    database_url: str, tmp_path: Path
) -> None:
    """With two streams per connection, three symbols use two connections; all trades land."""
    async with TestExchange(SYMBOLS, seed=9, rate=None, max_trades=1000) as ex:
        config = _config(ex, tmp_path, max_trades=3000, streams_per_connection=2)
        summary = await asyncio.wait_for(run_ingest(config, database_url), 60)
        produced = _produced(ex)
        opened = ex.connections_opened
    assert opened == 2
    assert stored_rows(database_url) == as_rows(produced)
    assert summary.stored == 3000


def test_trade_log_line_never_uses_exponent_notation() -> None:
    """-v prints a dust quantity as 0.00000001, not 1E-8."""
    from decimal import Decimal

    from binprice.cli.views.ingest import trade_line
    from binprice.exchange.protocol import WireTrade

    line = trade_line(
        WireTrade("BTCUSDT", 7, Decimal("0.00000010"), Decimal("0.00000001"), 0, True)
    )
    assert line.endswith("BTCUSDT #7 sell 0.00000001 @ 0.00000010")
