"""A watch poll reads trades and the rollup only through indexes, so it can run every second."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from binprice.db.watch import SNAPSHOT_SQL
from tests.test_candles_plans import reads
from tests.test_query_plans import MIDDLE, SYMBOL_SETS


def test_snapshot_query_reads_only_through_indexes(big: psycopg.Connection[Any]) -> None:
    """Busy, rare, never-traded and several symbols: index scans only."""
    params = {
        "now": MIDDLE,
        "reference": MIDDLE - timedelta(hours=1),
        "rate_since": MIDDLE - timedelta(seconds=10),
        "spark_since": MIDDLE - timedelta(minutes=29),
    }
    failures = []
    for label, symbols in SYMBOL_SETS.items():
        nodes = reads(big, SNAPSHOT_SQL, {**params, "symbols": symbols})
        if not nodes or not all("Index" in node and index for node, _, index in nodes):
            failures.append(f"{label}: {nodes}")
    assert not failures, "\n".join(failures)
