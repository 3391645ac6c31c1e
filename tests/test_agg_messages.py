"""The messages of the queries with `--kind aggTrades` (#19 item 4): an answer that is not
there names aggregate trades, and the hint names the commands that store them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from tests.conftest import run_binprice

START = datetime(2026, 3, 2, 12, tzinfo=UTC)
HINT = "(`binprice ingest --stream aggTrade` or `binprice import --kind aggTrades` records them)"


def _store_aggs(url: str) -> None:
    """Aggregates 1..3 of BTCUSDT (spot), one a second from START."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO agg_trades (market, symbol, agg_id, price, quantity, first_trade_id, "
            "last_trade_id, timestamp, is_buyer_maker) "
            "VALUES (0, 'BTCUSDT', %s, 1.5, 2, %s, %s, %s, false)",
            [(i, i, i, START + timedelta(seconds=i)) for i in (1, 2, 3)],
        )


def test_queries_of_aggregates_say_no_aggregate_trades_and_what_stores_them(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """With no aggregate stored, `latest --kind aggTrades` fails in one line that names
    aggregate trades and `ingest --stream aggTrade` / `import --kind aggTrades`; with BTCUSDT's
    aggregates only, ETHUSDT is named as having no aggregate trades, and `at` and `range` say
    "no aggregate trade(s)" for it (the trades' messages keep saying trades)."""
    base = ("--database-url", database_url)
    none = run_binprice(*base, "latest", "--kind", "aggTrades", env=clean_env)
    assert none.returncode == 1
    assert none.stderr == f"error: no aggregate trades for any symbol {HINT}\n", none.stderr
    trades = run_binprice(*base, "latest", env=clean_env)
    assert trades.returncode == 1
    assert trades.stderr.startswith("error: no trades for any symbol (`binprice ingest` records")
    _store_aggs(database_url)
    some = run_binprice(*base, "latest", "BTCUSDT", "ETHUSDT", "--kind", "agg", env=clean_env)
    assert some.returncode == 0, some.stderr
    assert "no aggregate trades for: ETHUSDT" in some.stderr, some.stderr
    ts = (START + timedelta(seconds=2)).isoformat()
    at = run_binprice(*base, "at", "--ts", ts, "ETHUSDT", "--kind", "aggTrades", env=clean_env)
    assert at.returncode == 1
    assert at.stderr.startswith("error: no aggregate trade near "), at.stderr
    window = ("--start", START.isoformat(), "--end", (START + timedelta(minutes=1)).isoformat())
    ranged = run_binprice(*base, "range", "ETHUSDT", *window, "--kind", "aggTrades", env=clean_env)
    assert ranged.returncode == 1
    assert ranged.stderr.startswith("error: no aggregate trades from "), ranged.stderr
