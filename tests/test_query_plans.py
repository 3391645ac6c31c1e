"""Every query is answered from an index: EXPLAIN shows no sequential scan of trades.

The table is big enough (200k rows, analysed) that the planner would scan it if no index fitted,
with a busy symbol (70% of rows), a rare one (20 rows) and one never traded. `trades` is
partitioned by month (migration 0008): the rows span five monthly partitions, a few old ones sit
in the DEFAULT partition, and the months ahead are empty; every partition a plan reads must be
read through its copy of the expected index.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from binprice.db.queries import AT_SQL, LATEST_SQL, RANGE_SQL, RECORDED_SYMBOLS_SQL

ROWS = 200_000
START = datetime(2026, 1, 20, tzinfo=UTC)
#: Four monthly partitions hold trades (January to April).
SPAN = timedelta(days=75)
MIDDLE = START + SPAN / 2
#: Trades of a month without a partition: they live in the DEFAULT partition.
OLD = datetime(2019, 6, 1, tzinfo=UTC)

FILL_SQL = """
INSERT INTO trades (symbol, trade_id, price, quantity, timestamp, is_buyer_maker)
SELECT CASE WHEN i %% 10 < 7 THEN 'BTCUSDT' ELSE 'ETHUSDT' END, i,
       70000 + (i %% 1000) / 100.0, 0.001 * (1 + i %% 7),
       %(start)s::timestamptz + i * %(step)s::interval, i %% 2 = 0
FROM generate_series(1, %(rows)s) AS i
UNION ALL
SELECT 'RAREUSDT', i, 1.5, 2, %(start)s::timestamptz + i * interval '1 day', false
FROM generate_series(1, 20) AS i
UNION ALL
SELECT 'OLDUSDT', i, 3.5, 1, %(old)s::timestamptz + i * interval '1 hour', true
FROM generate_series(1, 10) AS i
"""


def parents(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Each partition, and each index of a partition, mapped to its parent's name."""
    rows = conn.execute(
        "SELECT c.relname, p.relname FROM pg_inherits AS i "
        "JOIN pg_class AS c ON c.oid = i.inhrelid JOIN pg_class AS p ON p.oid = i.inhparent"
    ).fetchall()
    return {str(child): str(parent) for child, parent in rows}


def scans(
    plan: dict[str, Any], names: dict[str, str] | None = None
) -> Iterator[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every node in a JSON plan; with `names`, a partition
    and its indexes are reported by their parent's names."""
    names = names or {}
    relation, index = plan.get("Relation Name"), plan.get("Index Name")
    yield plan["Node Type"], names.get(relation or "", relation), names.get(index or "", index)
    for child in plan.get("Plans", []):
        yield from scans(child, names)


def trades_nodes(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    """(node type, index) of the plan nodes reading trades (any partition of it)."""
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    nodes = scans(row[0][0]["Plan"], parents(conn))
    return [(node, index) for node, rel, index in nodes if rel == "trades"]


KEY = "pk_trades"
# (sql, parameters): every read of trades goes through the primary key (0011: `at` and the
# edges of `range` take a minute's trades as a range of it, found in the rollup).
CASES = {
    "latest": (LATEST_SQL, {}),
    "at": (AT_SQL, {"ts": MIDDLE, "before": False}),
    "at --before": (AT_SQL, {"ts": MIDDLE, "before": True}),
    "range 1m": (RANGE_SQL, {"start": MIDDLE, "end": MIDDLE + timedelta(minutes=1)}),
    "range 1d": (RANGE_SQL, {"start": MIDDLE, "end": MIDDLE + timedelta(days=1)}),
    "range all": (RANGE_SQL, {"start": START, "end": START + SPAN + timedelta(days=1)}),
}
SYMBOL_SETS = {
    "busy": ["BTCUSDT"],
    "rare": ["RAREUSDT"],
    "never": ["NEVERUSDT"],
    "all": ["BTCUSDT", "ETHUSDT", "RAREUSDT", "NEVERUSDT"],
}


#: A partition this small is read whole: the DEFAULT partition (kept nearly empty) and the
#: empty months ahead, which the plans prune at run time anyway.
SMALL_PARTITION_ROWS = 100


def small_partitions(conn: psycopg.Connection[Any]) -> set[str]:
    """Partitions of trades holding at most SMALL_PARTITION_ROWS rows (analysed)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'trades'::regclass AND c.reltuples <= %s",
        (SMALL_PARTITION_ROWS,),
    ).fetchall()
    return {str(row[0]) for row in rows}


def test_every_query_reads_trades_only_through_its_index(big: psycopg.Connection[Any]) -> None:
    """No sequential scan of a partition that holds trades: latest, at and range read trades
    through the primary key only (the seed index neither), for busy, rare, never-traded and
    several symbols at once."""
    small, names = small_partitions(big), parents(big)
    failures = []
    for name, (sql, params) in CASES.items():
        for label, symbols in SYMBOL_SETS.items():
            row = big.execute(
                "EXPLAIN (FORMAT JSON) " + sql, {**params, "symbols": symbols, "market": 0}
            ).fetchone()
            assert row is not None
            nodes = [
                (node, relation, names.get(index or "", index))
                for node, relation, index in scans(row[0][0]["Plan"])
                if names.get(relation or "", relation) == "trades"
            ]
            keyed = [n for n in nodes if n[0].startswith("Index") and n[2] == KEY]
            others = [n for n in nodes if n not in keyed]
            if not keyed or any(not (n == "Seq Scan" and r in small) for n, r, _ in others):
                failures.append(f"{name} / {label}: {others or nodes}")
    assert not failures, "\n".join(failures)


def test_recorded_symbols_is_a_loose_index_scan(big: psycopg.Connection[Any]) -> None:
    """Finding all symbols hops through the primary key, which leads with the symbol: no
    row-by-row scan."""
    nodes = trades_nodes(big, RECORDED_SYMBOLS_SQL, {"market": 0})
    assert nodes
    assert all(node.startswith("Index Only Scan") and index == KEY for node, index in nodes)


def trades_reads(plan: dict[str, Any], names: dict[str, str], under: bool = False) -> int:
    """How many reads of trades a plan holds: an Append or Merge Append over its partitions
    counts once, as does a scan of one partition on its own."""
    children = plan.get("Plans", [])
    relation = names.get(plan.get("Relation Name") or "", plan.get("Relation Name"))
    over_trades = plan["Node Type"] in {"Append", "Merge Append"} and any(
        names.get(c.get("Relation Name") or "", c.get("Relation Name")) == "trades"
        for c in children
    )
    own = 1 if over_trades or (relation == "trades" and not under) else 0
    return own + sum(trades_reads(c, names, over_trades) for c in children)


def test_at_reads_two_minutes_at_most_per_side(big: psycopg.Connection[Any]) -> None:
    """`at` holds four reads of trades (the minute holding the time, else the previous or
    next rollup minute, on each side) and no per-partition probes for the symbol's first and
    last row."""
    row = big.execute(
        "EXPLAIN (FORMAT JSON) " + AT_SQL,
        {"symbols": ["BTCUSDT"], "ts": MIDDLE, "before": False, "market": 0},
    ).fetchone()
    assert row is not None
    assert trades_reads(row[0][0]["Plan"], parents(big)) == 4


def test_range_reads_each_end_of_the_window_once(big: psycopg.Connection[Any]) -> None:
    """`range` reads each partial minute at the window's ends once (sums, open, close and the
    first trade at the high and low all come from that read), and one whole minute for each of
    open, close, high and low only where the ends do not hold them: six reads of trades."""
    params = {
        "symbols": ["BTCUSDT"],
        "start": MIDDLE,
        "end": MIDDLE + timedelta(days=1),
        "market": 0,
    }
    row = big.execute("EXPLAIN (FORMAT JSON) " + RANGE_SQL, params).fetchone()
    assert row is not None
    assert trades_reads(row[0][0]["Plan"], parents(big)) == 6


def test_at_reads_no_further_minute_when_its_own_minute_answers(
    big: psycopg.Connection[Any],
) -> None:
    """When the rollup minute holding the time has a trade on each side of it, the previous
    and next minutes are never read (the walk stops at once)."""
    found = big.execute(
        "SELECT minute FROM trade_minutes WHERE symbol = 'BTCUSDT' AND trades >= 2 "
        "AND minute >= %s ORDER BY minute LIMIT 1",
        (MIDDLE,),
    ).fetchone()
    assert found is not None
    first, last = big.execute(
        "SELECT min(timestamp), max(timestamp) FROM trades WHERE symbol = 'BTCUSDT' "
        "AND timestamp >= %(m)s AND timestamp < %(m)s + interval '1 minute'",
        {"m": found[0]},
    ).fetchone() or (None, None)
    assert first is not None and last is not None and first < last
    params = {"symbols": ["BTCUSDT"], "ts": first, "before": False, "market": 0}
    row = big.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + AT_SQL, params).fetchone()
    assert row is not None
    names = parents(big)
    executed = [
        node
        for node in _nodes(row[0][0]["Plan"])
        if node["Node Type"] == "Append"
        and any(names.get(c.get("Relation Name") or "") == "trades" for c in node["Plans"])
        and node.get("Actual Loops", 0) > 0
    ]
    assert len(executed) == 2  # the minute holding the time, read by each side


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
