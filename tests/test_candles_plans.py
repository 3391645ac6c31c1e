"""The candle query reads trades and the rollup only through indexes (no sequential scan).

Uses the 200k-row table of test_query_plans (busy, rare and never-traded symbols, five monthly
partitions and the DEFAULT partition holding trades).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from binprice.db.candles import INTERVALS, candle_query
from tests.test_query_plans import MIDDLE, SPAN, START, SYMBOL_SETS, parents, scans

RAGGED = timedelta(seconds=7, milliseconds=5)
WINDOWS = {
    "a day": (MIDDLE + RAGGED, MIDDLE + timedelta(days=1) + RAGGED),
    "30 seconds": (MIDDLE + RAGGED, MIDDLE + timedelta(seconds=30) + RAGGED),
    "everything": (START - timedelta(days=400), START + SPAN + timedelta(days=1)),
}
READ_TABLES = {"trades", "trade_minutes"}
RAGGED_WINDOWS = {"a day", "30 seconds"}


def reads(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    """(node type, relation, index) of every plan node reading trades (any partition of it,
    named as the parent) or trade_minutes."""
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    return [node for node in scans(row[0][0]["Plan"], parents(conn)) if node[1] in READ_TABLES]


@pytest.mark.parametrize("name", ["1m", "1h", "1d", "3d", "1w", "1M"])
def test_candle_query_reads_only_through_indexes(big: psycopg.Connection[Any], name: str) -> None:
    """Every interval, window and symbol set: index scans only, the rollup read, and trades
    read for the partial minutes at ragged window ends (a window whose ends are whole minutes
    has empty edges, which partition pruning removes from the plan)."""
    failures = []
    for window, (start, end) in WINDOWS.items():
        for label, symbols in SYMBOL_SETS.items():
            sql, params = candle_query(INTERVALS[name])
            params.update(symbols=symbols, start=start, end=end)
            nodes = reads(big, sql, params)
            tables = {relation for _, relation, _ in nodes}
            indexed = all("Index" in node and index for node, _, index in nodes)
            expected = READ_TABLES if window in RAGGED_WINDOWS else {"trade_minutes"}
            if not indexed or tables != expected:
                failures.append(f"{name} {window} / {label}: {nodes}")
    assert not failures, "\n".join(failures)
