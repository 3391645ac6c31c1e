"""The market dimension in storage (migration 0012, #19): existing rows become spot, and the same
symbol in two markets is two series with their own keys, rollup, gaps, checkpoints, imports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from binprice.db import migrations
from binprice.db.partitions import ensure_partitions
from binprice.db.schema import SCHEMA_HEAD
from binprice.markets import Market, market_of_number
from tests.trades_data import Row, load

BEFORE = "0011_lean_live_month"
AFTER = "0012_market"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
USDM = Market.USDM.number
#: The tables that key by symbol, and each one's key after 0012.
KEYED = {
    "trades": 'PRIMARY KEY (market, symbol, trade_id, "timestamp")',
    "trade_minutes": "PRIMARY KEY (market, symbol, minute)",
    "gaps": "PRIMARY KEY (market, symbol, first_id, last_id)",
    "checkpoints": "PRIMARY KEY (market, symbol)",
    "imports": "PRIMARY KEY (market, name)",
}


def _rows(symbol: str = "BTCUSDT", first: int = 1, count: int = 5) -> list[Row]:
    return [
        Row(symbol, first + i, Decimal(100 + i), Decimal("0.5"), T0 + timedelta(seconds=20 * i))
        for i in range(count)
    ]


def _copy(url: str, rows: list[Row], market: int) -> None:
    """COPY rows into trades in one market."""
    load(url, rows, market)


def _fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _minutes(url: str) -> list[tuple[Any, ...]]:
    return _fetch(
        url,
        "SELECT market, symbol, minute, trades, volume, first_id, last_id, open, close "
        "FROM trade_minutes ORDER BY market, symbol, minute",
    )


def test_market_numbers_are_the_blocks_numbers_and_round_trip() -> None:
    """One mapping: spot 0, usdm 1, coinm 2, the numbers trade_blocks has held since 0010."""
    from binprice.compressed import codec
    from binprice.db import catalog

    assert [m.number for m in Market] == [0, 1, 2]
    assert [market_of_number(m.number) for m in Market] == list(Market)
    assert (codec.MARKET_SPOT, codec.MARKET_USDM, codec.MARKET_COINM) == (0, 1, 2)
    assert Market.SPOT.number == catalog.MARKET_SPOT


def test_upgrade_from_0011_keeps_every_row_as_spot(empty_database_url: str) -> None:
    """Trades, rollup minutes, a gap, a checkpoint and an import written at 0011 read back
    unchanged and in spot after 0012, under keys that hold the market."""
    url = empty_database_url
    migrations.upgrade(url, BEFORE)
    load(url, _rows())
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO gaps (symbol, first_id, last_id, state) VALUES ('BTCUSDT', 6, 9, 'hole')"
        )
        conn.execute("INSERT INTO checkpoints (symbol, verified_through) VALUES ('BTCUSDT', 5)")
        conn.execute(
            "INSERT INTO imports (name, symbol, period_start, period_end, sha256, state, rows, "
            "inserted, first_id, last_id, source) VALUES ('BTCUSDT-trades-2026-01-01.zip', "
            "'BTCUSDT', '2026-01-01', '2026-01-02', 'ab', 'done', 5, 5, 1, 5, 'x')"
        )
    trades = _fetch(url, "SELECT * FROM trades ORDER BY trade_id")
    minutes = _fetch(url, "SELECT * FROM trade_minutes ORDER BY minute")
    others = {t: _fetch(url, f"SELECT * FROM {t}") for t in ("gaps", "checkpoints", "imports")}

    migrations.upgrade(url, AFTER)

    assert _fetch(url, "SELECT * FROM trades ORDER BY trade_id") == [(*r, 0) for r in trades]
    assert _fetch(url, "SELECT * FROM trade_minutes ORDER BY minute") == [(*r, 0) for r in minutes]
    for table, rows in others.items():
        assert _fetch(url, f"SELECT * FROM {table}") == [(*r, 0) for r in rows]
    with psycopg.connect(url) as conn:
        keys = conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid::regclass::text = ANY(%s)",
            (list(KEYED),),
        ).fetchall()
    assert dict(keys) == KEYED
    # Every partition of trades has the key with the market, this month's too.
    partition_keys = _fetch(
        url,
        "SELECT DISTINCT pg_get_indexdef(i.indexrelid) LIKE '%(market, symbol, trade_id%' "
        "FROM pg_inherits AS h JOIN pg_index AS i ON i.indrelid = h.inhrelid AND i.indisprimary "
        "WHERE h.inhparent = 'trades'::regclass",
    )
    assert partition_keys == [(True,)]


def test_the_same_symbol_in_two_markets_is_two_series_with_their_own_rollup(
    database_url: str,
) -> None:
    """BTCUSDT spot and BTCUSDT usdm with the same trade ids are both stored; each market's
    minutes count only its own trades, through inserts, updates and deletes."""
    url = database_url
    spot, usdm = _rows(), _rows(count=3)
    usdm = [Row(r.symbol, r.trade_id, r.price * 2, r.quantity, r.timestamp) for r in usdm]
    load(url, spot)
    _copy(url, usdm, USDM)
    assert _fetch(url, "SELECT market, count(*) FROM trades GROUP BY 1 ORDER BY 1") == [
        (0, 5),
        (USDM, 3),
    ]
    minutes = _minutes(url)
    assert [(m[0], m[3], m[5], m[6]) for m in minutes] == [
        (0, 3, 1, 3),
        (0, 2, 4, 5),
        (USDM, 3, 1, 3),
    ]
    assert minutes[2][7:] == (Decimal(200), Decimal(204))
    # Re-sending a stored trade of one market is a no-op there (the writers' staging path).
    with psycopg.connect(url) as conn:
        inserted = conn.execute(
            "INSERT INTO trades (symbol, trade_id, price, quantity, timestamp, is_buyer_maker, "
            "market) VALUES ('BTCUSDT', 1, 200, 0.5, %s, false, %s) "
            "ON CONFLICT (market, symbol, trade_id, timestamp) DO NOTHING",
            (T0, USDM),
        ).rowcount
        assert inserted == 0
        # An update and a delete recompute only their own market's minutes.
        conn.execute("UPDATE trades SET price = 1000 WHERE market = %s AND trade_id = 3", (USDM,))
        conn.execute("DELETE FROM trades WHERE market = 0 AND trade_id = 1")
    after = _minutes(url)
    assert [(m[0], m[3], m[5], m[6]) for m in after] == [
        (0, 2, 2, 3),
        (0, 2, 4, 5),
        (USDM, 3, 1, 3),
    ]
    assert after[2][7:] == (Decimal(200), Decimal(1000))
    assert after[0][7:] == (Decimal(101), Decimal(102))


def test_a_row_moved_out_of_the_default_partition_keeps_its_market(database_url: str) -> None:
    """A futures trade of a month without a partition lands in DEFAULT; making the month moves
    it with its market."""
    url = database_url
    far = datetime(2031, 5, 3, tzinfo=UTC)
    _copy(url, [Row("BTCUSDT", 7, Decimal(1), Decimal(1), far)], USDM)
    assert _fetch(url, "SELECT market FROM trades_default") == [(USDM,)]
    with psycopg.connect(url) as conn:
        assert ensure_partitions(conn, far, far + timedelta(days=1)) == ["trades_2031_05"]
    assert _fetch(url, "SELECT market, trade_id FROM trades_2031_05") == [(USDM, 7)]


def test_downgrade_refuses_futures_rows_and_goes_back_without_them(database_url: str) -> None:
    """0011 cannot tell markets apart: going back with a usdm trade stored fails and changes
    nothing; once it is deleted, the downgrade goes through and spot's rows stay."""
    url = database_url
    load(url, _rows())
    _copy(url, _rows(count=1), USDM)
    with pytest.raises(Exception, match="futures market"):
        migrations.downgrade(url, BEFORE)
    assert _fetch(url, "SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM trades WHERE market <> 0")
    migrations.downgrade(url, BEFORE)
    assert _fetch(url, "SELECT count(*) FROM trades") == [(5,)]
    assert _fetch(url, "SELECT sum(trades) FROM trade_minutes") == [(5,)]
    migrations.upgrade(url, "head")
    assert _fetch(url, "SELECT DISTINCT market FROM trades") == [(0,)]
