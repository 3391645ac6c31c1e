"""`binprice status`: per-symbol coverage from the rollup and index probes, and its output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from binprice.cli.views.status import TEXT_COLUMNS, status_json, status_table, status_text
from binprice.db.gaps import UPSERT_SQL
from binprice.db.partitions import ensure_partitions, prune
from binprice.db.status import STATUS_SQL, SYMBOLS_SQL, Status, SymbolStatus, database_status
from binprice.timespec import format_timestamp
from tests.conftest import run_binprice
from tests.test_partitions import APR, FEB, JAN, MONTH_ROWS, month_rows, three_months
from tests.test_query_plans import START, SYMBOL_SETS
from tests.trades_data import load


def _filled(url: str) -> None:
    """Three months of BTCUSDT and one of ETHUSDT in monthly partitions, SOLUSDT waiting in
    DEFAULT, an open gap of BTCUSDT and one of XRPUSDT, which has no trades; and open gaps of
    aggregate ids (kind 1), which are not status's (it reports trades)."""
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, JAN, APR)
    load(url, [*three_months(), *month_rows("SOLUSDT", 40, datetime(2021, 5, 1, tzinfo=UTC))])
    with psycopg.connect(url) as conn:
        conn.execute(UPSERT_SQL, (0, 0, "BTCUSDT", 1000, 1099, "open"))
        conn.execute(UPSERT_SQL, (0, 0, "XRPUSDT", 7, 9, "open"))
        conn.execute(UPSERT_SQL, (0, 0, "ETHUSDT", 1, 5, "hole"))
        conn.execute(UPSERT_SQL, (0, 1, "BTCUSDT", 10, 19, "open"))
        conn.execute(UPSERT_SQL, (0, 1, "ADAUSDT", 1, 2, "open"))


def _brute_force(url: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT symbol, min(trade_id), max(trade_id), count(*),
                   (array_agg(timestamp ORDER BY trade_id))[1],
                   (array_agg(timestamp ORDER BY trade_id DESC))[1]
            FROM trades GROUP BY symbol
            """
        ).fetchall()
    return {s: (lo, first, hi, last, n) for s, lo, hi, n, first, last in rows}


def test_status_per_symbol_first_last_count_gaps_and_age(database_url: str) -> None:
    """First and last stored trade (id and time), the exact count, open gaps (a hole is not
    one) and the last trade's age, for symbols in partitions, in DEFAULT and with gaps only."""
    _filled(database_url)
    with psycopg.connect(database_url) as conn:
        result = database_status(conn)
    expected = _brute_force(database_url)
    by_symbol = {s.symbol: s for s in result.symbols}
    assert list(by_symbol) == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
    for symbol, (lo, first, hi, last, count) in expected.items():
        s = by_symbol[symbol]
        assert (s.first_id, s.first_at, s.last_id, s.last_at, s.trades) == (
            lo,
            first,
            hi,
            last,
            count,
        )
        assert s.last_trade_age == result.checked_at - last
    assert (by_symbol["BTCUSDT"].open_gaps, by_symbol["BTCUSDT"].open_gap_ids) == (1, 100)
    assert by_symbol["ETHUSDT"].open_gaps == 0
    assert by_symbol["XRPUSDT"] == SymbolStatus("XRPUSDT", None, None, None, None, 0, 1, 3, None)
    assert result.trades == 4 * MONTH_ROWS + MONTH_ROWS
    assert result.default_rows == MONTH_ROWS  # SOLUSDT's month has no partition
    assert result.partitions >= 3 and result.trades_bytes > 0
    assert result.database_bytes > result.trades_bytes and result.pruned_before is None


def test_status_of_named_symbols_includes_one_never_stored(database_url: str) -> None:
    """Asked symbols come back in order, normalised, a never-traded one with nothing stored."""
    _filled(database_url)
    with psycopg.connect(database_url) as conn:
        result = database_status(conn, ["ethusdt", "NEVERUSDT"])
    assert [s.symbol for s in result.symbols] == ["ETHUSDT", "NEVERUSDT"]
    assert result.symbols[1] == SymbolStatus("NEVERUSDT", None, None, None, None, 0, 0, 0, None)


def test_status_leaves_out_history_pruned_with_its_rollup_kept(database_url: str) -> None:
    """After `prune --keep-rollup`, the rollup still holds January, but status counts and
    starts from the trades that are stored, and says where history was cut."""
    _filled(database_url)
    with psycopg.connect(database_url) as conn:
        prune(conn, FEB, keep_rollup=True)
        result = database_status(conn, ["BTCUSDT"])
    [btc] = result.symbols
    assert (btc.first_id, btc.first_at, btc.trades) == (1 + MONTH_ROWS, FEB, 2 * MONTH_ROWS)
    assert result.pruned_before == FEB


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _indexed(node: dict[str, Any]) -> bool:
    """An index scan, or a bitmap heap scan fed by a bitmap index scan."""
    if node["Node Type"] == "Bitmap Heap Scan":
        return any(n["Node Type"] == "Bitmap Index Scan" for n in _nodes(node))
    return "Index" in node["Node Type"]


def test_status_reads_trades_only_through_indexes(big: psycopg.Connection[Any]) -> None:
    """Every partition holding trades, and the rollup, are read through an index (empty or
    near-empty partitions may get a sequential scan: it reads nothing), for busy, rare,
    never-traded and several symbols; run-time pruning probes one partition per first and
    last trade of a symbol however many partitions there are; the symbol list is a loose
    index scan of the rollup."""
    sizes = dict(
        big.execute(
            "SELECT c.relname, c.reltuples FROM pg_inherits AS i "
            "JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = 'trades'::regclass"
        ).fetchall()
    )
    failures = []
    params: dict[str, Any] = {"since": START - timedelta(days=1), "market": 0}
    for label, symbols in SYMBOL_SETS.items():
        row = big.execute(
            "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + STATUS_SQL,
            {**params, "symbols": symbols},
        ).fetchone()
        assert row is not None
        nodes = [n for n in _nodes(row[0][0]["Plan"]) if "Relation Name" in n]
        for node in nodes:
            relation = node["Relation Name"]
            if relation not in sizes and relation != "trade_minutes":
                continue
            if not _indexed(node) and sizes.get(relation, TINY) >= TINY:
                failures.append(f"{label}: {node['Node Type']} on {relation}")
        probed = sum(n["Actual Loops"] for n in nodes if n["Relation Name"] in sizes)
        traded = sum(1 for s in symbols if s != "NEVERUSDT")
        if probed != 2 * traded:
            failures.append(f"{label}: {probed} partition probes for {traded} symbols")
    symbol_list = [n for n in _nodes(_plan(big, SYMBOLS_SQL)) if "Relation Name" in n]
    assert all(_indexed(n) for n in symbol_list if n["Relation Name"] == "trade_minutes")
    assert not failures, "\n".join(failures)


#: Below this many rows a partition may be read without an index.
TINY = 100


def _plan(conn: psycopg.Connection[Any], sql: str) -> dict[str, Any]:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, {"market": 0}).fetchone()
    assert row is not None
    return row[0][0]["Plan"]  # type: ignore[no-any-return]


# --- output -------------------------------------------------------------------------------

AT = datetime(2026, 5, 28, 4, 13, 40, 983000, tzinfo=UTC)


def _wide() -> Status:
    """The widest values a real database gives: a 12-letter symbol, ten-digit ids, billions."""
    symbols = (
        SymbolStatus(
            "1000SATSUSDT",
            6_300_000_001,
            AT - timedelta(days=400),
            9_999_999_999,
            AT,
            9_999_999_999,
            1_234,
            99_999,
            timedelta(days=3, hours=23, minutes=59),
        ),
        SymbolStatus("XRPUSDT", None, None, None, None, 0, 1, 3, None),
    )
    return Status(symbols, AT, 2**40, 2**39, 120, 5, AT - timedelta(days=400))


@pytest.mark.parametrize("width", [80, 120])
def test_status_table_fits_the_terminal_without_cutting_a_value(width: int) -> None:
    """At 80 columns every value is shown whole (nothing cut to …) and no line is wider."""
    from rich.console import Console

    console = Console(width=width, record=True, force_terminal=True, color_system=None)
    console.print(status_table(_wide()))
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for value in ("1000SATSUSDT", "9,999,999,999", "6300000001", "9999999999", "1,234"):
        assert value in text
    assert format_timestamp(AT) in text and "3d23h ago" in text


def test_status_text_is_one_aligned_line_per_symbol_then_the_database() -> None:
    """In a pipe: a header of the JSON keys, one line per symbol with every column, '-' for
    nothing, then the database's lines (each under 80 columns)."""
    lines = status_text(_wide()).splitlines()
    assert lines[0].split() == list(TEXT_COLUMNS)
    assert lines[1].split() == [
        "1000SATSUSDT",
        "6300000001",
        format_timestamp(AT - timedelta(days=400)),
        "9999999999",
        format_timestamp(AT),
        "9999999999",
        "1234",
        "99999",
        str(345_540_000),
    ]
    assert lines[2].split() == ["XRPUSDT", "-", "-", "-", "-", "0", "1", "3", "-"]
    assert lines[1].index(format_timestamp(AT)) == lines[0].index("last_at")  # aligned
    assert all(len(line) <= 80 for line in lines[3:])
    assert "history before" in lines[5] and "DEFAULT" in lines[6]


def test_status_json_keys_and_values_are_stable() -> None:
    """One object; symbols with stable keys; times ISO 8601 with Z, ages in ms, nulls."""
    data = json.loads(status_json(_wide()))
    assert list(data) == [
        "checked_at",
        "database_bytes",
        "trades_bytes",
        "partitions",
        "default_rows",
        "pruned_before",
        "trades",
        "symbols",
        "months",
    ]
    first, never = data["symbols"]
    assert list(first) == [
        "symbol",
        "first_id",
        "first_at",
        "last_id",
        "last_at",
        "trades",
        "open_gaps",
        "open_gap_ids",
        "last_trade_age_ms",
    ]
    assert first["last_at"] == "2026-05-28T04:13:40.983Z"
    assert first["last_trade_age_ms"] == 345_540_000
    assert never["first_id"] is None and never["last_trade_age_ms"] is None


def test_status_command_in_a_pipe_and_as_json(database_url: str, clean_env: dict[str, str]) -> None:
    """The real command: plain text in a pipe, `--json` parseable, both from the same data."""
    _filled(database_url)
    plain = run_binprice("--database-url", database_url, "status", env=clean_env)
    assert plain.returncode == 0, plain.stderr
    assert [line.split()[0] for line in plain.stdout.splitlines()[1:5]] == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "XRPUSDT",
    ]
    as_json = run_binprice("--database-url", database_url, "status", "--json", env=clean_env)
    assert as_json.returncode == 0, as_json.stderr
    btc = json.loads(as_json.stdout)["symbols"][0]
    assert (btc["symbol"], btc["trades"], btc["first_at"]) == (
        "BTCUSDT",
        3 * MONTH_ROWS,
        format_timestamp(JAN),
    )
