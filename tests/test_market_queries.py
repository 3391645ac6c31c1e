"""BTCUSDT on Spot and BTCUSDT on USD-M stored side by side never answer for each other (#19):
latest, at, range, candles, status, gaps and watch through the Store and the command line, over
rows and with spot's month compressed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from typer.testing import CliRunner

import binprice
from binprice.cli import cli
from binprice.db.compress import compress, compressed_months
from binprice.db.partitions import ensure_partitions
from binprice.errors import ConfigError
from binprice.markets import Market
from tests.test_market_storage import _copy
from tests.trades_data import Row

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)
NOON = APRIL + timedelta(days=9, hours=12)
SPOT_PRICE, USDM_PRICE = Decimal("70000.5"), Decimal("69990.1")


def _series(price: Decimal, first_id: int, offset: timedelta) -> list[Row]:
    """Ten trades a minute apart from NOON + offset, ids from `first_id`, prices rising."""
    return [
        Row(
            "BTCUSDT",
            first_id + i,
            price + i,
            Decimal("0.5"),
            NOON + offset + i * timedelta(minutes=1),
        )
        for i in range(10)
    ]


SPOT = _series(SPOT_PRICE, 1000, timedelta(seconds=0))
#: The same ids as spot's, other prices, 20 s later: any mix-up shows in every answer.
USDM = _series(USDM_PRICE, 1000, timedelta(seconds=20))


@pytest.fixture
def url(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_partitions(conn, APRIL, MAY)
        conn.execute(
            "INSERT INTO gaps (market, symbol, first_id, last_id, state) VALUES "
            "(0, 'BTCUSDT', 5, 6, 'hole'), (1, 'BTCUSDT', 7, 9, 'open')"
        )
    _copy(database_url, SPOT, Market.SPOT.number)
    _copy(database_url, USDM, Market.USDM.number)
    return database_url


@pytest.fixture(params=["rows", "compressed"])
def store(url: str, request: pytest.FixtureRequest) -> Iterator[binprice.Store]:
    """The two series as rows, or with April compressed (spot's blocks) and USD-M's rows
    written into the compressed month afterwards."""
    if request.param == "compressed":
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM trades WHERE market = 1")
            (month,) = compress(conn, MAY).months
            assert (month.action, month.trades) == ("compress", len(SPOT))
        _copy(url, USDM, Market.USDM.number)
    with binprice.connect(url) as handle:
        yield handle


def test_latest_at_and_range_answer_from_their_own_market(store: binprice.Store) -> None:
    """Each question asked of each market returns that market's trades only."""
    for market, rows in (("spot", SPOT), (Market.USDM, USDM)):
        (last,) = store.latest(["BTCUSDT"], market=market)
        assert (last.price, last.timestamp, last.trade_id) == (
            rows[-1].price,
            rows[-1].timestamp,
            rows[-1].trade_id,
        )
        (near,) = store.at(rows[3].timestamp, "BTCUSDT", market=market)
        assert (near.price, near.offset_ms) == (rows[3].price, 0)
        (window,) = store.range(NOON, NOON + timedelta(hours=1), "BTCUSDT", market=market)
        assert (window.trades, window.open, window.close) == (10, rows[0].price, rows[-1].price)
        assert window.volume == Decimal(5)
        candles = store.candles("BTCUSDT", "1m", NOON, NOON + timedelta(hours=1), market=market)
        assert [c.open for c in candles] == [r.price for r in rows]
    assert store.latest(["BTCUSDT"], market="coinm") == []
    # A window holding only the futures trade's second: spot has none there.
    (futures,) = store.range(
        USDM[0].timestamp, USDM[0].timestamp + timedelta(seconds=1), "BTCUSDT", market="usdm"
    )
    assert futures.trades == 1
    assert store.range(USDM[0].timestamp, USDM[0].timestamp + timedelta(seconds=1), "BTCUSDT") == []


def test_export_and_trades_read_their_own_market(store: binprice.Store) -> None:
    """`export -f ndjson` and `store.trades` give each market's trades exactly."""
    hour = (NOON, NOON + timedelta(hours=1))
    for market, rows in (("spot", SPOT), ("usdm", USDM)):
        out = io.BytesIO()
        assert store.export("BTCUSDT", *hour, "ndjson", out, market=market) == len(rows)
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [(t["trade_id"], t["price"]) for t in lines] == [
            (r.trade_id, str(r.price)) for r in rows
        ]
        got = [
            (t.trade_id, t.price, t.timestamp)
            for t in store.trades("BTCUSDT", *hour, market=market)
        ]
        assert got == [(r.trade_id, r.price, r.timestamp) for r in rows]
    with pytest.raises(binprice.NotFoundError):
        store.export("BTCUSDT", *hour, "csv", io.BytesIO(), market="coinm")


def test_status_gaps_and_watch_answer_from_their_own_market(store: binprice.Store) -> None:
    """Status counts, recorded gaps and the watch snapshot are per market."""
    spot, usdm = store.status(market="spot"), store.status(market="usdm")
    assert [(s.symbol, s.trades, s.last_id, s.open_gaps) for s in spot.symbols] == [
        ("BTCUSDT", 10, 1009, 0)
    ]
    assert [(s.symbol, s.trades, s.last_at, s.open_gaps) for s in usdm.symbols] == [
        ("BTCUSDT", 10, USDM[-1].timestamp, 1)
    ]
    assert store.status(market="coinm").symbols == ()
    assert [(g.first_id, g.state) for g in store.gaps(market="spot")] == [(5, "hole")]
    assert [(g.first_id, g.state) for g in store.gaps("BTCUSDT", market="usdm")] == [(7, "open")]
    (snap,) = store.watch("BTCUSDT", count=1, market="usdm")
    (only,) = snap.symbols
    assert only.price == USDM[-1].price


def test_an_unknown_market_is_refused_with_the_choices(store: binprice.Store) -> None:
    with pytest.raises(ConfigError, match="choose one of spot, usdm, coinm"):
        store.latest(["BTCUSDT"], market="options")


def test_compress_compresses_every_markets_month_and_merges_late_rows_per_market(
    url: str,
) -> None:
    """A month holding spot and USD-M rows of BTCUSDT becomes blocks of each market (one
    `compressed_months` row each); every trade answers from its own market as before, the
    rollup unchanged; late USD-M rows and a first COIN-M series merge into the month's blocks."""
    columns = 'market, symbol, trade_id, price::text, quantity::text, "timestamp"'
    every = f"SELECT {columns} FROM trades_all ORDER BY market, symbol, trade_id"
    rollup = "SELECT * FROM trade_minutes ORDER BY market, symbol, minute"
    with psycopg.connect(url, autocommit=True) as conn:
        rows, minutes = conn.execute(every).fetchall(), conn.execute(rollup).fetchall()
        (month,) = compress(conn, MAY).months
        assert (month.action, month.trades) == ("compress", 20)
        assert conn.execute("SELECT count(*) FROM trades").fetchone() == (0,)
        assert conn.execute(every).fetchall() == rows
        assert conn.execute(rollup).fetchall() == minutes
        assert [(c.market, c.trades) for c in compressed_months(conn)] == [(0, 10), (1, 10)]
        late = _series(USDM_PRICE, 1010, timedelta(minutes=10, seconds=20))[:3]
        _copy(url, late, Market.USDM.number)
        _copy(url, SPOT[:2], Market.COINM.number)  # COIN-M's first rows, ids spot has too
        (merged,) = compress(conn, MAY).months
        assert (merged.action, merged.trades) == ("merge", 5)
        assert [(c.market, c.trades) for c in compressed_months(conn)] == [
            (0, 10),
            (1, 13),
            (2, 2),
        ]
    with binprice.connect(url) as store:
        hour = (NOON, NOON + timedelta(hours=1))
        for market, want in (("spot", SPOT), ("usdm", USDM + late), ("coinm", SPOT[:2])):
            got = [(t.trade_id, t.price) for t in store.trades("BTCUSDT", *hour, market=market)]
            assert got == [(r.trade_id, r.price) for r in want]
        assert store.latest(["BTCUSDT"], market="usdm")[0].price == late[-1].price


def _run(url: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, [*args, "--database-url", url], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_commands_take_market_from_the_flag_or_the_environment(url: str) -> None:
    """`--market` and `BINPRICE_MARKET` pick the series; spot is the default."""
    spot = json.loads(_run(url, "latest", "BTCUSDT", "--json"))
    usdm = json.loads(_run(url, "latest", "BTCUSDT", "--json", "--market", "usdm"))
    from_env = json.loads(_run(url, "latest", "BTCUSDT", "--json", env={"BINPRICE_MARKET": "usdm"}))
    assert [spot[0]["price"], usdm[0]["price"]] == [str(SPOT[-1].price), str(USDM[-1].price)]
    assert from_env == usdm
    ranged = json.loads(
        _run(
            url,
            "range",
            "BTCUSDT",
            "--market",
            "usdm",
            "--json",
            "--start",
            NOON.isoformat(),
            "--end",
            (NOON + timedelta(hours=1)).isoformat(),
        )
    )
    assert ranged[0]["open"] == str(USDM[0].price)
    window = ["--start", NOON.isoformat(), "--end", (NOON + timedelta(hours=1)).isoformat()]
    exported = _run(url, "export", "BTCUSDT", "--market", "usdm", "-f", "ndjson", *window)
    assert [json.loads(line)["price"] for line in exported.splitlines()] == [
        str(r.price) for r in USDM
    ]
    status = json.loads(_run(url, "status", "--json", "--market", "usdm"))
    assert [s["trades"] for s in status["symbols"]] == [10]
    refused = CliRunner().invoke(cli, ["latest", "--market", "options", "--database-url", url])
    assert refused.exit_code != 0
    assert "unknown market 'options'" in refused.stderr
