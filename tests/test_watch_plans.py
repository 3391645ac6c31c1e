"""A watch poll reads trades and the rollup only through indexes, so it can run every second."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg

from binprice.db.watch import SNAPSHOT_SQL
from tests.test_query_plans import MIDDLE, SYMBOL_SETS, parents, scans, small_partitions

READ_TABLES = {"trades", "trade_minutes"}


def test_snapshot_query_reads_only_through_indexes(big: psycopg.Connection[Any]) -> None:
    """Busy, rare, never-traded and several symbols: index scans only (a near-empty partition,
    the DEFAULT one or a month ahead, may be read whole: see test_query_plans)."""
    params = {
        "now": MIDDLE,
        "reference": MIDDLE - timedelta(hours=1),
        "rate_since": MIDDLE - timedelta(seconds=10),
        "spark_since": MIDDLE - timedelta(minutes=29),
        "market": 0,
    }
    small, names = small_partitions(big), parents(big)
    failures = []
    for label, symbols in SYMBOL_SETS.items():
        row = big.execute("EXPLAIN (FORMAT JSON) " + SNAPSHOT_SQL, {**params, "symbols": symbols})
        plan = row.fetchone()
        assert plan is not None
        nodes = [
            (node, relation, index)
            for node, relation, index in scans(plan[0][0]["Plan"])
            if names.get(relation or "", relation) in READ_TABLES
        ]
        indexed = [n for n in nodes if "Index" in n[0] and n[2]]
        whole = [n for n in nodes if n[0] == "Seq Scan" and n[1] in small]
        if not indexed or len(indexed) + len(whole) != len(nodes):
            failures.append(f"{label}: {nodes}")
    assert not failures, "\n".join(failures)


def _seed_index_conditions(plan: dict[str, Any], names: dict[str, str]) -> Iterator[str]:
    index = plan.get("Index Name")
    if index is not None and names.get(index, index) == "ix_trades_timestamp_symbol":
        yield str(plan.get("Index Cond", ""))
    for child in plan.get("Plans", []):
        yield from _seed_index_conditions(child, names)


def test_reference_price_never_walks_the_time_index(big: psycopg.Connection[Any]) -> None:
    """The price at the window's start is found through the rollup and the primary key (as
    `at`): the seed index (timestamp DESC, symbol) is read only for the rate's bounded window,
    never walked from the reference time until the symbol's trade turns up (for a rare symbol
    in a busy database, that would read every other symbol's trades in between)."""
    params = {
        "now": MIDDLE,
        "reference": MIDDLE - timedelta(hours=1),
        "rate_since": MIDDLE - timedelta(seconds=10),
        "spark_since": MIDDLE - timedelta(minutes=29),
        "symbols": ["RAREUSDT"],
        "market": 0,
    }
    plan = big.execute("EXPLAIN (FORMAT JSON) " + SNAPSHOT_SQL, params).fetchone()
    assert plan is not None
    conditions = list(_seed_index_conditions(plan[0][0]["Plan"], parents(big)))
    one_sided = [c for c in conditions if not ('"timestamp" >' in c and '"timestamp" <=' in c)]
    assert conditions
    assert not one_sided
