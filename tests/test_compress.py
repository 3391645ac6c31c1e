"""`db compress` on a real server: a closed month's rows become blocks in one transaction,
every trade answers exactly once afterwards (rows and blocks, via `trades_all`), the rollup
is untouched, late rows merge into the blocks, and a check that fails changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from binprice.db.compress import (
    CompressionCheckError,
    compress,
    compressed_months,
    plan_compress,
)
from binprice.db.partitions import ensure_partitions

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)

#: Trades over April: BTCUSDT every ~13 s with an id hole, ETHUSDT sparse; 8-decimal texts.
FILL_SQL = """
INSERT INTO trades (symbol, trade_id, price, quantity, "timestamp", is_buyer_maker)
SELECT 'BTCUSDT', 1000 + i + (i > 5000)::int * 50,
       round((70000 + 300 * sin(i / 500.0))::numeric, 2)::numeric(20, 8),
       round(mod(i, 97) / 1000.0 + 0.00001, 5)::numeric(20, 8),
       %(start)s + i * interval '13 seconds', mod(i, 3) = 0
FROM generate_series(0, 9999) AS i
UNION ALL
SELECT 'ETHUSDT', 7 + i, (2000 + mod(i, 11))::numeric(20, 2), (i + 1)::numeric,
       %(start)s + i * interval '1 hour' + interval '17 ms', mod(i, 2) = 0
FROM generate_series(0, 300) AS i
"""
TRADES_SQL = """
SELECT symbol, trade_id, price::text, quantity::text, "timestamp", is_buyer_maker
FROM {} ORDER BY symbol, trade_id"""
ROLLUP_SQL = "SELECT * FROM trade_minutes ORDER BY symbol, minute"
#: The rollup as the triggers would compute it from every trade (rows and blocks).
ROLLUP_OF_ALL_SQL = """
SELECT symbol, date_trunc('minute', "timestamp", 'UTC'), count(*), sum(quantity),
       sum(price * quantity), max(price), min(price), min(trade_id), max(trade_id),
       (array_agg(price ORDER BY trade_id))[1], (array_agg(price ORDER BY trade_id DESC))[1],
       market
FROM trades_all GROUP BY 1, 2, market ORDER BY 1, 2"""


def _filled(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    ensure_partitions(conn, APRIL, MAY)
    conn.execute(FILL_SQL, {"start": APRIL})
    return conn


def _all(conn: psycopg.Connection[Any], table: str = "trades_all") -> list[tuple[Any, ...]]:
    return conn.execute(TRADES_SQL.format(table)).fetchall()


def test_compress_swaps_rows_for_blocks_and_every_trade_answers_once(database_url: str) -> None:
    """After compress: no rows in April, blocks holding the very trades, rollup unchanged."""
    with _filled(database_url) as conn:
        rows, rollup = _all(conn, "trades"), conn.execute(ROLLUP_SQL).fetchall()
        plan = plan_compress(conn, MAY)
        assert [(m.month, m.action, m.trades) for m in plan.months] == [(APRIL, "compress", 10_301)]
        result = compress(conn, MAY)
        assert [(m.month, m.action, m.trades) for m in result.months] == [
            (APRIL, "compress", 10_301)
        ]
        assert conn.execute("SELECT count(*) FROM trades_2026_04").fetchone() == (0,)
        assert _all(conn) == rows
        assert conn.execute(ROLLUP_SQL).fetchall() == rollup
        (month,) = compressed_months(conn)
        assert (month.month, month.trades) == (APRIL, 10_301)
        assert 0 < month.bytes < month.row_bytes
        assert plan_compress(conn, MAY).months == ()


def test_closed_months_waiting_in_the_default_partition_are_made_then_compressed(
    database_url: str, clean_env: Any
) -> None:
    """Rows loaded before April's partition existed sit in trades_default: `db compress`
    plans April, makes its partition (the rows move out of DEFAULT) and compresses it."""
    from tests.conftest import run_binprice

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(FILL_SQL, {"start": APRIL})
        rows = _all(conn, "trades")
        assert conn.execute("SELECT count(*) FROM trades_default").fetchone() == (10_301,)
        assert conn.execute("SELECT to_regclass('trades_2026_04')").fetchone() == (None,)
        plan = plan_compress(conn, MAY)
        assert [(m.month, m.action, m.trades) for m in plan.months] == [(APRIL, "compress", 10_301)]
        assert conn.execute("SELECT count(*) FROM trades_default").fetchone() == (10_301,)
    env = {**clean_env, "BINPRICE_DATABASE_URL": database_url}
    done = run_binprice("db", "compress", "--before", "2026-05", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("compressed 2026-04: 10,301 trades"), done.stdout
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM trades_default").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM trades_2026_04").fetchone() == (0,)
        assert [m.month for m in compressed_months(conn)] == [APRIL]
        assert _all(conn) == rows


def test_late_rows_merge_into_the_blocks_once(database_url: str) -> None:
    """Rows written into a compressed month are read beside the blocks; the next compress
    merges them (a trade already in the blocks is kept once) and fixes the rollup."""
    with _filled(database_url) as conn:
        compress(conn, MAY)
        before = _all(conn)
        conn.execute(
            "INSERT INTO trades SELECT 'BTCUSDT', 6001 + i, 70000.5, 0.001, "
            "%s + interval '18 hours' + i * interval '1 ms', true FROM generate_series(0, 49) i",
            (APRIL,),
        )
        conn.execute(  # a trade the blocks already hold, delivered again
            "INSERT INTO trades SELECT * FROM trades_all WHERE symbol = 'ETHUSDT' AND trade_id = 9"
        )
        late = _all(conn, "trades")
        assert len(late) == 51
        merged = compress(conn, MAY)
        assert [(m.action, m.trades) for m in merged.months] == [("merge", 50)]
        assert conn.execute("SELECT count(*) FROM trades_2026_04").fetchone() == (0,)
        want = sorted({*before, *late}, key=lambda r: (r[0], r[1]))
        assert _all(conn) == want
        assert conn.execute(ROLLUP_SQL).fetchall() == conn.execute(ROLLUP_OF_ALL_SQL).fetchall()
        assert compressed_months(conn)[0].trades == 10_351


def test_a_rollup_that_disagrees_stops_compress_with_nothing_changed(database_url: str) -> None:
    """The blocks are checked against the rollup before the rows go."""
    with _filled(database_url) as conn:
        rows = _all(conn, "trades")
        conn.execute(
            "UPDATE trade_minutes SET volume = volume + 1 WHERE symbol = 'ETHUSDT' AND minute = %s",
            (APRIL,),
        )
        with pytest.raises(CompressionCheckError, match="2026-04"):
            compress(conn, MAY)
        assert _all(conn, "trades") == rows
        assert conn.execute("SELECT to_regclass('trade_blocks_2026_04')").fetchone() == (None,)
        assert compressed_months(conn) == []


def test_prune_drops_a_compressed_month_with_its_blocks(database_url: str) -> None:
    """`db prune` of a compressed month drops its rows, its blocks and its catalog row, and
    counts the trades and bytes of both."""
    from binprice.db.partitions import prune

    with _filled(database_url) as conn:
        compress(conn, MAY)
        result = prune(conn, MAY)
        assert result.trades == 10_301
        assert result.bytes > sum(p.bytes for p in result.partitions)
        assert conn.execute("SELECT to_regclass('trade_blocks_2026_04')").fetchone() == (None,)
        assert compressed_months(conn) == []
        assert conn.execute("SELECT count(*) FROM trades_all").fetchone() == (0,)


def test_db_compress_command_plans_then_compresses(database_url: str, clean_env: Any) -> None:
    """`db compress --dry-run --json` plans, `db compress` does it, months only once closed."""
    import json

    from tests.conftest import run_binprice

    _filled(database_url).close()
    env = {**clean_env, "BINPRICE_DATABASE_URL": database_url}
    planned = run_binprice("db", "compress", "--dry-run", "--json", env=env)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert (plan["done"], plan["trades"], plan["months"][0]["month"]) == (False, 10_301, "2026-04")
    early = run_binprice("db", "compress", "--before", "2026-04", env=env)
    assert early.stdout.startswith("nothing to compress")
    done = run_binprice("db", "compress", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("compressed 2026-04: 10,301 trades")


def test_status_and_db_info_show_each_month_as_rows_or_compressed(
    database_url: str, clean_env: Any
) -> None:
    """Per month: storage, trades (exact), bytes and bytes per trade, in text and JSON."""
    import json
    import re

    from tests.conftest import run_binprice

    with _filled(database_url) as conn:
        ensure_partitions(conn, MAY, datetime(2026, 5, 2, tzinfo=UTC))
        conn.execute(  # a trade in May, which stays rows
            "INSERT INTO trades VALUES ('BTCUSDT', 99999, 1, 1, '2026-05-02', true)"
        )
        compress(conn, MAY)
    env = {**clean_env, "BINPRICE_DATABASE_URL": database_url}
    status = run_binprice("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    months = json.loads(status.stdout)["months"]
    assert [(m["month"], m["storage"], m["trades"]) for m in months] == [
        ("2026-04", "compressed", 10_301),
        ("2026-05", "rows", 1),
    ]
    assert months[0]["bytes_per_trade"] < months[1]["bytes_per_trade"]
    info = run_binprice("db", "info", env=env)
    assert info.returncode == 0, info.stderr
    assert re.search(r"2026-04 compressed +10,301 trades", info.stdout)
    text = run_binprice("status", env=env).stdout
    assert re.search(r"2026-05 rows +1 trades", text)


def test_a_busy_day_in_a_quiet_month_gets_minute_blocks(database_url: str) -> None:
    """Density is decided per symbol and UTC day: one day of ~70 trades a minute is dense
    (a block per minute) even though the month averages ~2 a minute."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_partitions(conn, APRIL, MAY)
        conn.execute(
            "INSERT INTO trades SELECT 'BTCUSDT', i, 100.5, 0.001, "
            "%s + interval '3 days' + i * interval '860 ms', mod(i, 2) = 0 "
            "FROM generate_series(0, 99999) AS i",
            (APRIL,),
        )
        compress(conn, MAY)
        blocks, in_one_minute = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE date_trunc('minute', first_ts) = "
            "date_trunc('minute', last_ts)) FROM trade_blocks"
        ).fetchone()  # type: ignore[misc]
    assert blocks == in_one_minute == 1434  # 100,000 trades 860 ms apart: 1,434 minutes
