"""Every question from aggregate trades is answered from an index: EXPLAIN shows no sequential
scan of `agg_trades` (200k rows, analysed, a busy symbol, a rare one and one never traded), and
the questions by time read the `(market, symbol, "timestamp")` index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from binprice.db.aggtrades import (
    AGG_SYMBOLS_SQL,
    AT_AGG_SQL,
    COUNT_AGG_SQL,
    FIXED_AGG_CANDLES_SQL,
    LATEST_AGG_SQL,
    MONTHLY_AGG_CANDLES_SQL,
    RANGE_AGG_SQL,
)
from tests.test_query_plans import scans

ROWS = 200_000
START = datetime(2026, 1, 20, tzinfo=UTC)
SPAN = timedelta(days=75)
MIDDLE = START + SPAN / 2
KEY, TIME_INDEX = "pk_agg_trades", "ix_agg_trades_market_symbol_timestamp"

FILL_SQL = """
INSERT INTO agg_trades (market, symbol, agg_id, price, quantity, first_trade_id, last_trade_id,
                        "timestamp", is_buyer_maker)
SELECT m, CASE WHEN i %% 10 < 7 THEN 'BTCUSDT' ELSE 'ETHUSDT' END, i,
       70000 + (i %% 1000) / 100.0, 0.001 * (1 + i %% 7), 3 * i, 3 * i + i %% 3,
       %(start)s::timestamptz + i * %(step)s::interval, i %% 2 = 0
FROM generate_series(1, %(rows)s) AS i, (VALUES (0), (1)) AS k(m)
UNION ALL
SELECT 0, 'RAREUSDT', i, 1.5, 2, i, i, %(start)s::timestamptz + i * interval '1 day', false
FROM generate_series(1, 20) AS i
"""
WINDOW = {"start": MIDDLE, "end": MIDDLE + timedelta(days=1)}
CASES = {
    "latest": (LATEST_AGG_SQL, {}),
    "at": (AT_AGG_SQL, {"ts": MIDDLE, "before": False}),
    "range 1d": (RANGE_AGG_SQL, WINDOW),
    "count 1d": (COUNT_AGG_SQL, WINDOW),
    "candles 1h": (FIXED_AGG_CANDLES_SQL, {**WINDOW, "width": timedelta(hours=1), "origin": START}),
    "candles 1M": (MONTHLY_AGG_CANDLES_SQL, {"start": START, "end": START + SPAN}),
}
SYMBOL_SETS = {
    "busy": ["BTCUSDT"],
    "rare": ["RAREUSDT"],
    "never": ["NEVERUSDT"],
    "all": ["BTCUSDT", "ETHUSDT", "RAREUSDT", "NEVERUSDT"],
}


@pytest.fixture
def filled(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(FILL_SQL, {"start": START, "step": SPAN / ROWS, "rows": ROWS})
        conn.execute("VACUUM ANALYZE agg_trades")
        yield conn


def _nodes(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    """(node type, index) of the plan's reads of agg_trades: scans of the table, and the
    bitmap index scans feeding a bitmap heap scan of it."""
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    return [
        (node, index)
        for node, rel, index in scans(row[0][0]["Plan"])
        if rel == "agg_trades" or node == "Bitmap Index Scan"
    ]


def test_every_question_reads_agg_trades_through_an_index(
    filled: psycopg.Connection[Any],
) -> None:
    """latest by the primary key; at, range, the export's count and candles by an index (the
    time index, or a bitmap of an index for a long window); for busy, rare, never-traded and
    several symbols at once."""
    failures = []
    for name, (sql, params) in CASES.items():
        # A window holding all a symbol's rows may take them by the key's (market, symbol).
        wanted = {"latest": {KEY}, "at": {TIME_INDEX}}.get(name, {TIME_INDEX, KEY})
        for label, symbols in SYMBOL_SETS.items():
            nodes = _nodes(filled, sql, {**params, "symbols": symbols, "market": 1})
            reads = [(n, i) for n, i in nodes if n != "Bitmap Heap Scan"]  # its index read
            if not reads or any(n == "Seq Scan" or i not in wanted for n, i in reads):
                failures.append(f"{name} / {label}: {nodes}")
    assert not failures, "\n".join(failures)


def test_all_symbols_is_a_loose_index_scan(filled: psycopg.Connection[Any]) -> None:
    """Finding every symbol with aggregates hops through an index leading with (market,
    symbol): the key or the time index, whichever is smaller."""
    nodes = _nodes(filled, AGG_SYMBOLS_SQL, {"market": 0})
    assert nodes
    assert all(
        node.startswith("Index Only Scan") and index in {KEY, TIME_INDEX} for node, index in nodes
    )
