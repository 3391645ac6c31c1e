"""`binprice import --market usdm|coinm` from the test archive's futures folders into real
PostgreSQL (#19, the issue's item 3): a daily file of each market, beside a spot series of the
same symbol, every field exact, its `imports` row, gaps and checks in its own market."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from binprice.db.gaps import verify_gaps
from binprice.history import ImportOptions
from binprice.history._archive import daily
from binprice.markets import Market
from binprice.testing.archive import ArchiveServer
from binprice.testing.archive_files import ArchiveMarket
from tests.ingest_helpers import binprice_async, stored_rows
from tests.test_import import LATER, run

DAY = date(2025, 1, 2)


def _archive(market: Market, symbol: str) -> ArchiveMarket:
    return ArchiveMarket.generate(
        [symbol], DAY - timedelta(days=1), DAY + timedelta(days=2), trades_per_day=60, market=market
    )


@pytest.mark.parametrize(
    ("market", "symbol"), [(Market.USDM, "BTCUSDT"), (Market.COINM, "BTCUSD_PERP")]
)
async def test_a_daily_futures_file_is_imported_exactly_into_its_market(
    market: Market, symbol: str, database_url: str, tmp_path: Path
) -> None:
    """Two days of `data/futures/um|cm` daily files (header rows, true/false, ms) land field
    by field in the market's series, a spot file of the same name beside it stays spot's;
    `imports` rows and `gaps --verify` are per market."""
    futures, spot = _archive(market, symbol), _archive(Market.SPOT, symbol)
    # As rows, to compare them field by field (a closed month is written as blocks otherwise).
    window = {"start": DAY, "end": DAY + timedelta(days=2), "today": LATER, "compress_after": None}
    async with ArchiveServer(futures) as archive, ArchiveServer(spot) as spot_archive:
        summary, _ = await run(
            ImportOptions(
                (symbol,),
                archive_url=archive.url,
                spool_dir=tmp_path / "f",
                market=market.value,
                **window,
            ),
            database_url,
        )
        spot_summary, _ = await run(
            ImportOptions(
                (symbol,), archive_url=spot_archive.url, spool_dir=tmp_path / "s", **window
            ),
            database_url,
        )
    assert summary.ok and spot_summary.ok
    for series, m in ((futures, market), (spot, Market.SPOT)):
        files = [daily(symbol, DAY + timedelta(days=i), m) for i in range(2)]
        served = sorted(
            (t.symbol, t.trade_id, t.price, t.quantity, t.time_ms, t.is_buyer_maker)
            for f in files
            for t in series.trades(f)
        )
        assert len(served) == 120
        assert stored_rows(database_url, m) == served
    with psycopg.connect(database_url) as conn:
        names = conn.execute(
            "SELECT market, name, state FROM imports ORDER BY market, name"
        ).fetchall()
        assert [(m, s) for m, _, s in names] == [(0, "done")] * 2 + [(market.number, "done")] * 2
        assert verify_gaps(conn, market=market).ok and verify_gaps(conn).ok
    assert summary.last_trade_ids[symbol] == stored_rows(database_url, market)[-1][1]


async def test_import_market_on_the_command_line(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """`binprice import BTCUSD_PERP --market coinm` stores COIN-M's day (and nothing in
    spot), said in json lines."""
    futures = _archive(Market.COINM, "BTCUSD_PERP")
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with ArchiveServer(futures) as archive:
        code, out, err = await binprice_async(
            env,
            "--database-url",
            database_url,
            "import",
            "BTCUSD_PERP",
            "--market",
            "coinm",
            "--start",
            DAY.isoformat(),
            "--end",
            (DAY + timedelta(days=1)).isoformat(),
            "--archive-url",
            archive.url,
            "--log-format",
            "json",
        )
    assert code == 0, err
    # A closed month: COIN-M's blocks (tests/test_futures_blocks.py), read through trades_all.
    with psycopg.connect(database_url) as conn:
        per_market = conn.execute(
            "SELECT market, count(*) FROM trades_all GROUP BY market ORDER BY market"
        ).fetchall()
    assert per_market == [(Market.COINM.number, 60)]
    lines = [json.loads(line) for line in (out + err).splitlines() if line.startswith("{")]
    assert lines and "BTCUSD_PERP" in out + err
