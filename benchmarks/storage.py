"""Storage before and after partitioning `trades` by month (migration 0008), on the 10M-trade
table of `benchmarks/queries.py`.

    python benchmarks/storage.py [--database-url URL] [--trades N] [--copy-trades N] [--runs N]
                                 [--import-runs N] [--trades-per-day N] [--days D]
                                 [--only size,reindex,migrate,copy,import,fresh,latency,months,
                                         lean,leanat,market]

Every part runs in one server (default: a throwaway embedded one) and compares the two schemas
in the same run: "0007" is the unpartitioned table of revision 0007, "head" the partitioned one.

- `size`: builds the table (one COPY, as `queries.py` does) in a database at revision 0007
  (unpartitioned) and in one at head whose months were made first (as writers that call
  `ensure_partitions` do); prints each build's COPY rate and the bytes per stored trade: the
  table with its indexes and TOAST (every partition), plus the per-minute rollup; and each
  index's bytes per trade.
- `reindex`: the same two tables after `REINDEX TABLE trades` (indexes built in one pass, as
  a migration or a restore builds them, rather than row by row as writers grow them).
- `migrate`: upgrades the 0007 database to head (0008 copies the table into its months) and
  prints how long that took and the size after.
- `copy`: the COPY rate of `--copy-trades` trades into empty databases at 0007 and at head,
  alternating which goes first, `--runs` times: one COPY, and 1,000-trade COPYs each
  committed (what the ingest writers do), and one COPY with the rollup's insert trigger
  dropped; medians and the ratio of each run.
- `import`: the whole `binprice import` process (as `benchmarks/import.py` runs it: `--days`
  daily files of `--trades-per-day` trades from the test archive server on loopback) into an
  empty database at 0007, run by the code of the commit before partitioning (extracted from
  git), and into one at head, run by this checkout (which makes the archive's month itself);
  alternating, `--import-runs` times.
- `fresh`: the first COPY and the first import on a brand-new server (one new cluster for
  each measurement: a new cluster creates its WAL files on first use), for both schemas.
- `latency`: `queries.py`'s latency table for both databases.
- `months`: `latest` and `at` server time on a head database whose `--trades` span
  `--months` monthly partitions, beside the same trades in one partition.
- `reads`: the same `--trades` in two head databases, one left as rows and one whose months
  were compressed (`db compress`); the library's `latest`, `at` (at `--latency-runs` random
  times: p50/p95), `range` and `candles` (30 days, unaligned ends) and `export -f csv` of
  BTCUSDT's 30 days, client wall time, median of `--runs`, row vs compressed and their ratio.
- `lean` (issue #18, a lean live month, migration 0011): `--copy-trades` trades COPYed in
  committed 10,000-trade batches (ingest's batch limit) into empty databases: the seed
  design's bare table (`(timestamp DESC, symbol)` only), 0009 (before 0011), head with 0009's
  rollup trigger (the index drop alone), head, and head without the rollup trigger (the floor);
  "grouped": the seed table and head with each batch's rows grouped by symbol, as ingest's
  COPY encoder sends them; order alternating, `--runs` times. Prints the writing backend's CPU
  per trade (robust on a shared machine, unlike wall time), the wall rate and bytes per trade
  after VACUUM, and each index's bytes per trade (first run) as the COPYs grew it and after
  `REINDEX` (built in one pass; "fillfactor 100": the partition's indexes set to pack full).
  The last three take the rollup trigger apart: a trigger function that reads nothing (the
  transition table's capture alone), one without open and close, and open and close taken by
  joining the transition table back on the first and last id.
- `leanat`: `at` and `range` latency on one head database of `--trades` trades (the 10M table
  of `queries.py`): this checkout's queries and main's (extracted from git), alternating,
  twice; then the covering index of 0002 built again and the queries of the commit before
  0011 (extracted from git), same database, same run. Server execution time, its planning
  time and the client's wall time, median / p95, one-shot and as a prepared statement. Then
  the first month is compressed and the library's `at` timed on it.
- `market` (issue #19, migration 0012): the live month's bytes per trade at 0011 and at head
  (the `market` column and the keys that hold it): `--copy-trades` trades at 1,000 a minute
  COPYed in committed 10,000-trade batches, then VACUUM; heap, each index, the rollup.

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import queries
from candles import batched_copy, scratch
from queries import END, client_ms, copy_rows, latency, server, server_ms

from binprice.db import migrations
from binprice.db.partitions import ensure_partitions
from binprice.db.queries import AT_SQL, LATEST_SQL

#: benchmarks/import.py (`import` being a keyword, imported by name).
importer = importlib.import_module("import")

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "0007_imports"
#: The revision that made the live month lean; its parent revision, and the commit before it.
LEAN = "alembic/versions/0011_lean_live_month.py"
BEFORE_LEAN = "0009_prunes"
#: The revision that partitions `trades`; the commit before the one that added it is "before".
PARTITIONING = "alembic/versions/0008_trades_partitioned.py"
BATCH = 1_000
MB = 1024 * 1024
#: `trades` itself (its own size when unpartitioned, none when partitioned) and its partitions.
_TABLES = """
FROM pg_class AS c WHERE c.oid = 'trades'::regclass
   OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'trades'::regclass)
"""
SIZES_SQL = f"""
SELECT sum(pg_relation_size(c.oid)), sum(pg_indexes_size(c.oid)),
       sum(pg_total_relation_size(c.oid)), count(*) FILTER (WHERE c.relispartition)
{_TABLES}"""
#: Each index of trades, a partition's index counted under the partitioned index it belongs to.
INDEX_SIZES_SQL = f"""
SELECT coalesce(parent.relname, i.relname), sum(pg_relation_size(i.oid))
FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid
LEFT JOIN pg_inherits AS h ON h.inhrelid = i.oid
LEFT JOIN pg_class AS parent ON parent.oid = h.inhparent
WHERE x.indrelid IN (SELECT c.oid {_TABLES})
GROUP BY 1 ORDER BY 1"""


def make_months(url: str, span: timedelta = queries.SPAN) -> None:
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, END - span, END + timedelta(days=1))


def build_at(admin: str, name: str, revision: str, count: int) -> tuple[str, float]:
    """A database at `revision` (its months made first at head) holding `count` trades COPYed
    in one statement, vacuumed and analysed; its URL and the COPY rate."""
    url = scratch(admin, name, revision)
    if revision == "head":
        make_months(url)
    with psycopg.connect(url) as conn:
        rate = copy_rows(conn, "trades", count)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE trades")
        conn.execute("VACUUM ANALYZE trade_minutes")
    return url, rate


def sizes(url: str, count: int) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        heap, indexes, total, leaves = conn.execute(SIZES_SQL).fetchone()  # type: ignore[misc]
        rollup = conn.execute("SELECT pg_total_relation_size('trade_minutes')").fetchone()[0]  # type: ignore[index]
    return {
        "heap": heap / count,
        "indexes": indexes / count,
        "trades": total / count,
        "rollup": rollup / count,
        "total": (total + rollup) / count,
        "total_mb": (total + rollup) / MB,
        "partitions": leaves,
    }


def index_sizes(url: str, count: int) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        return {str(name): size / count for name, size in conn.execute(INDEX_SIZES_SQL)}


def print_sizes(label: str, found: dict[str, float]) -> None:
    print(
        f"  {label:<26} {found['heap']:7.1f} {found['indexes']:8.1f} {found['trades']:7.1f} "
        f"{found['rollup']:7.1f} {found['total']:7.1f}  ({found['total_mb']:,.0f} MB, "
        f"{found['partitions']:.0f} partitions)"
    )


def size_part(admin: str, count: int) -> tuple[str, str]:
    print(f"building {count:,} trades twice (one COPY each, indexes and rollup triggers on):")
    before, rate = build_at(admin, "bp_storage_0007", BEFORE, count)
    print(f"  0007 (unpartitioned)      COPY {rate:>10,.0f} trades/s")
    after, rate = build_at(admin, "bp_storage_head", "head", count)
    print(f"  head (monthly partitions) COPY {rate:>10,.0f} trades/s")
    report_sizes("bytes per stored trade", before, after, count)
    return before, after


def report_sizes(title: str, before: str, after: str, count: int) -> None:
    print(f"\n{title}:")
    print(f"  {'':<26} {'heap':>7} {'indexes':>8} {'trades':>7} {'rollup':>7} {'total':>7}")
    print_sizes("0007 (unpartitioned)", sizes(before, count))
    print_sizes("head (monthly partitions)", sizes(after, count))
    old, new = index_sizes(before, count), index_sizes(after, count)
    for name in sorted(old.keys() | new.keys()):
        print(f"  index {name:<28} 0007 {old.get(name, 0):6.1f}  head {new.get(name, 0):6.1f}")


def reindex_part(before: str, after: str, count: int) -> None:
    """The same tables with every index built in one pass (as a migration, a restore or a
    REINDEX builds them) instead of row by row."""
    for url in (before, after):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("REINDEX TABLE trades")
    report_sizes("bytes per stored trade after REINDEX TABLE trades", before, after, count)


def migrate_part(before: str, count: int) -> None:
    began = time.perf_counter()
    migrations.upgrade(before)
    spent = time.perf_counter() - began
    with psycopg.connect(before, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE trades")
    print(f"\nmigrating the 0007 table to head: {spent:.1f} s ({count / spent:,.0f} trades/s)")
    print_sizes("after the migration", sizes(before, count))
    for name, size in index_sizes(before, count).items():
        print(f"  index {name:<28} head {size:6.1f} (built after the rows were copied)")


ONE_COPY = "one COPY"
#: The same without the rollup's insert trigger: PostgreSQL's COPY inserts row by row into a
#: partitioned table that has an insert trigger with a transition table (copyfrom.c,
#: CIM_SINGLE), and batches the rows (multi-insert) into a plain one. Dropped, not disabled:
#: a disabled trigger still counts there.
NO_TRIGGER = "one COPY, no rollup trigger"
COPY_MODES = (ONE_COPY, NO_TRIGGER, f"{BATCH:,}-trade COPYs")


def copy_part(admin: str, count: int, runs: int) -> None:
    print(f"\nCOPY rate of {count:,} trades into an empty table, {runs} runs, order alternating:")
    results: dict[tuple[str, str], list[float]] = {}
    for run in range(runs):
        order = ("0007", "head") if run % 2 == 0 else ("head", "0007")
        for schema in order:
            for mode in COPY_MODES:
                url = revision_url(admin, "bp_storage_copy", schema)
                if mode in (ONE_COPY, NO_TRIGGER):
                    with psycopg.connect(url) as conn:
                        if mode == NO_TRIGGER:
                            conn.execute("DROP TRIGGER trades_minutes_insert ON trades")
                            conn.commit()
                        rate = copy_rows(conn, "trades", count, seed=run + 3)
                else:
                    rate = batched_copy(url, count, BATCH, seed=run + 3)
                results.setdefault((schema, mode), []).append(rate)
        line = ", ".join(
            f"{mode}: {results[('head', mode)][-1] / results[('0007', mode)][-1]:.2f}x"
            for mode in COPY_MODES
        )
        print(f"  run {run + 1}: head / 0007 {line}")
    for mode in COPY_MODES:
        old = statistics.median(results[("0007", mode)])
        new = statistics.median(results[("head", mode)])
        ratios = [
            n / o for n, o in zip(results[("head", mode)], results[("0007", mode)], strict=True)
        ]
        print(
            f"  {mode:<27} 0007 {old:>9,.0f}/s  head {new:>9,.0f}/s  "
            f"median ratio {statistics.median(ratios):.2f}x"
        )


def months_part(admin: str, count: int, months: int, runs: int) -> None:
    span = timedelta(days=30.44 * months)
    print(f"\n{count:,} trades over {months} months: latest/at ms, server / client round trip")
    print(f"(planning included; median of {runs}):")
    for label, made in ((f"{months} monthly partitions", True), ("all in one partition", False)):
        url = scratch(admin, "bp_storage_months", "head")
        if made:
            make_months(url, span)
        saved, queries.SPAN = queries.SPAN, span
        try:
            with psycopg.connect(url) as conn:
                copy_rows(conn, "trades", count)
        finally:
            queries.SPAN = saved
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE trades")
            cells = []
            for symbol in ("BTCUSDT", queries.QUIET[-1]):
                p = {"symbols": [symbol], "ts": END - span / 2, "before": True, "market": 0}
                for name, sql in (("latest", LATEST_SQL), ("at --before", AT_SQL)):
                    ms = statistics.median(server_ms(conn, sql, p) for _ in range(runs))
                    trip = statistics.median(client_ms(conn, sql, p) for _ in range(runs))
                    cells.append(f"{name} {symbol} {ms:.3f} / {trip:.3f}")
        print(f"  {label:<24} " + "  ".join(cells))


def _wall_ms(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1000


def reads_part(admin: str, count: int, runs: int, latency_runs: int) -> None:
    """Row months vs the same trades compressed: the library's read calls, timed."""
    from datetime import UTC, datetime

    from binprice.db.candles import candles
    from binprice.db.compress import compress_month
    from binprice.db.partitions import month_start
    from binprice.db.queries import latest_prices, price_at, price_range
    from binprice.export import write_trades

    rows_url, _ = build_at(admin, "bp_storage_reads_rows", "head", count)
    blocks_url, _ = build_at(admin, "bp_storage_reads_blocks", "head", count)
    start = END - queries.SPAN
    with psycopg.connect(blocks_url, autocommit=True) as conn:
        month = month_start(start)
        while month < END:
            done = compress_month(conn, month)
            print(f"compressed {month:%Y-%m}: {done.trades:,} trades in {done.seconds:.1f} s")
            month = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
        conn.execute("VACUUM ANALYZE trade_blocks")
    rng = random.Random(11)
    times = [start + rng.random() * queries.SPAN for _ in range(latency_runs)]
    window = (start + timedelta(minutes=7, seconds=13.5), END - timedelta(seconds=41.25))
    target = Path(tempfile.gettempdir()) / "binprice-reads-bench.csv"
    symbol = ["BTCUSDT"]
    print(f"\nreads of {count:,} trades (BTCUSDT, 30 days), client ms, median of {runs}:")
    print(f"  {'':<26} {'rows':>12} {'compressed':>12} {'ratio':>7}")
    found: dict[str, list[float]] = {}
    exported = 0
    for label, url in (("rows", rows_url), ("compressed", blocks_url)):
        with psycopg.connect(url, autocommit=True) as conn:

            def export(conn: psycopg.Connection[Any] = conn) -> int:
                with target.open("wb") as out:
                    return write_trades(conn, symbol, *window, "csv", out=out)

            ats = sorted(_wall_ms(lambda t=t: price_at(conn, t, symbol)) for t in times)
            found[label] = [
                statistics.median(
                    _wall_ms(lambda: latest_prices(conn, symbol)) for _ in range(runs)
                ),
                ats[len(ats) // 2],
                ats[int(len(ats) * 0.95)],
                statistics.median(
                    _wall_ms(lambda: price_range(conn, *window, symbol)) for _ in range(runs)
                ),
                statistics.median(
                    _wall_ms(lambda: candles(conn, symbol, "1h", *window)) for _ in range(runs)
                ),
                statistics.median(_wall_ms(export) for _ in range(runs)),
            ]
            exported = export()
    target.unlink(missing_ok=True)
    names = ["latest", "at p50", "at p95", "range 30 d", "candles 1h 30 d", "export csv 30 d"]
    for i, name in enumerate(names):
        row, block = found["rows"][i], found["compressed"][i]
        print(f"  {name:<26} {row:>12.2f} {block:>12.2f} {block / row:>6.2f}x")
    for label in ("rows", "compressed"):
        rate = exported / (found[label][-1] / 1000)
        print(f"  export csv {label}: {exported:,} trades, {rate:,.0f} trades/s")


def revision_url(admin: str, name: str, schema: str) -> str:
    """An empty database `name` at 0007, or at head with the months of `queries.py`'s trades
    made first (as writers that call `ensure_partitions` do)."""
    url = scratch(admin, name, BEFORE if schema == "0007" else "head")
    if schema == "head":
        make_months(url)
    return url


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass(frozen=True, slots=True)
class Imports:
    """`binprice import` of one archive, by the code before partitioning (into 0007) or by
    this checkout (into head), each with a download directory of its own."""

    archive: str
    days: int
    rows: int
    before: str  # the commit before partitioning
    before_src: Path  # its `src`, extracted
    work: Path

    @classmethod
    def prepare(cls, archive: str, per_day: int, days: int, work: Path) -> Imports:
        commit = git(
            "rev-parse",
            git("log", "-1", "--format=%H", "--diff-filter=A", "--", PARTITIONING) + "^",
        )
        tarball = work / "before.tar"
        git("archive", f"--output={tarball}", commit, "src", "alembic")
        (work / "before").mkdir()
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(work / "before")], check=True)
        return cls(archive, days, per_day * days, commit, work / "before" / "src", work)

    def rate(self, admin: str, schema: str) -> float:
        """Trades per second of one import, spawn to exit, into a new database of `schema`."""
        # At head the import makes the archive's month itself, before loading its first file.
        url = scratch(admin, "bp_storage_import", BEFORE if schema == "0007" else "head")
        side = self.work / schema
        side.mkdir(exist_ok=True)
        source = self.before_src if schema == "0007" else None
        wall, *_ = importer.run_import(url, self.archive, self.days, side, self.rows, source=source)
        return self.rows / wall


def import_part(admin: str, imports: Imports, runs: int) -> None:
    print(
        f"\n`binprice import` of {imports.rows:,} trades in {imports.days} daily files, "
        f"{runs} runs, order alternating; 0007 by {imports.before[:7]} (before partitioning), "
        "head by this checkout:"
    )
    rates: dict[str, list[float]] = {"0007": [], "head": []}
    for run in range(runs):
        for schema in ("0007", "head") if run % 2 == 0 else ("head", "0007"):
            rates[schema].append(imports.rate(admin, schema))
        old, new = rates["0007"][-1], rates["head"][-1]
        print(f"  run {run + 1}: 0007 {old:,.0f}/s, head {new:,.0f}/s, ratio {new / old:.2f}x")
    ratios = [n / o for n, o in zip(rates["head"], rates["0007"], strict=True)]
    print(
        f"  import  0007 {statistics.median(rates['0007']):>9,.0f}/s  "
        f"head {statistics.median(rates['head']):>9,.0f}/s  "
        f"median ratio {statistics.median(ratios):.2f}x"
    )


def fresh_part(count: int, imports: Imports) -> None:
    print("\nfirst run on a brand-new server (a new cluster for each measurement):")
    for schema in ("0007", "head"):
        with server(None, "postgres") as admin:
            url = revision_url(admin, "bp_storage_fresh", schema)
            with psycopg.connect(url) as conn:
                copy = copy_rows(conn, "trades", count)
        with server(None, "postgres") as admin:
            imported = imports.rate(admin, schema)
        print(
            f"  {schema:<5} one COPY of {count:,} {copy:>9,.0f}/s; "
            f"import of {imports.rows:,} {imported:>9,.0f}/s"
        )


def query_parts(admin: str, args: argparse.Namespace, parts: set[str]) -> None:
    """The parts that time queries on their own databases: `months`, `reads`."""
    if "months" in parts:
        months_part(admin, args.trades, args.months, args.latency_runs)
    if "reads" in parts:
        reads_part(admin, args.trades, args.runs, args.latency_runs)


def _lean_revision() -> Any:
    spec = importlib.util.spec_from_file_location("lean_revision", ROOT / LEAN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEED_TABLE = """
CREATE TABLE trades_seed (LIKE trades INCLUDING DEFAULTS);
CREATE INDEX ix_trades_seed_timestamp_symbol ON trades_seed ("timestamp" DESC, symbol);
"""
LEAN_VARIANTS = (
    "seed",
    "seed, grouped",
    "0009",
    "head, 0009 trigger",
    "head",
    "head, grouped",
    "head, no trigger",
    "head, grouped, fillfactor 100",
    "head, trigger reads nothing",
    "head, no open/close",
    "head, open/close by join",
)
#: The live month's partition indexes (fillfactor is set on each partition's index).
PARTITION_INDEXES_SQL = """
SELECT c.relname FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid JOIN pg_class AS p ON p.oid = i.inhparent
WHERE p.relname IN ('pk_trades', 'ix_trades_timestamp_symbol')
"""


def _grouped(block: str) -> str:
    """The block's rows grouped by symbol, each symbol's in order: what ingest's COPY encoder
    sends since #18 item 4 (`CopyEncoder.batch`)."""
    by_symbol: dict[str, list[str]] = {}
    for line in block.splitlines(keepends=True):
        by_symbol.setdefault(line[: line.index("\t")], []).append(line)
    return "".join("".join(lines) for lines in by_symbol.values())


LEAN_BATCH = 10_000


def _trigger_variants() -> dict[str, str]:
    """What the rollup's insert trigger costs, part by part: a function that reads nothing
    (the transition table's capture alone), one without open and close, and open and close
    taken by joining the transition table back on the first and last id."""
    lean = _lean_revision().LEAN_ADD
    arrays = "(min(ARRAY[trade_id::numeric, price]))[2], (max(ARRAY[trade_id::numeric, price]))[2]"
    assert arrays in lean
    head, _, tail = lean.partition("    INSERT INTO")
    merge = tail[tail.index("    ON CONFLICT") :]
    return {
        "head, trigger reads nothing": head + "    RETURN NULL;\nEND\n$$;\n",
        "head, no open/close": lean.replace(arrays, "min(price), max(price)"),
        "head, open/close by join": head
        + """    INSERT INTO trade_minutes AS m (symbol, minute, trades, volume, notional, high,
                                    low, first_id, last_id, open, close)
    SELECT g.symbol, g.minute, g.n, g.volume, g.notional, g.high, g.low, g.first_id,
           g.last_id, o.price, c.price
    FROM (SELECT symbol, date_bin('1 minute', timestamp, '2000-01-01 00:00+00') AS minute,
                 count(*) AS n, sum(quantity) AS volume, sum(price * quantity) AS notional,
                 max(price) AS high, min(price) AS low, min(trade_id) AS first_id,
                 max(trade_id) AS last_id
          FROM new_trades GROUP BY 1, 2) AS g
    JOIN new_trades AS o ON o.symbol = g.symbol AND o.trade_id = g.first_id
    JOIN new_trades AS c ON c.symbol = g.symbol AND c.trade_id = g.last_id
    ORDER BY 1, 2
"""
        + merge,
    }


TRIGGER_VARIANTS: dict[str, str] = {}


def _lean_database(admin: str, variant: str) -> tuple[str, str]:
    """An empty database for `variant` (its months made) and the table to COPY into."""
    url = scratch(admin, "bp_storage_lean", BEFORE_LEAN if variant == "0009" else "head")
    make_months(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if variant.startswith("seed"):
            conn.execute(SEED_TABLE)
            return url, "trades_seed"
        if variant == "head, 0009 trigger":
            conn.execute(_lean_revision().SORTED_ADD)
        if variant.endswith("fillfactor 100"):
            for (name,) in conn.execute(PARTITION_INDEXES_SQL).fetchall():
                conn.execute(f'ALTER INDEX "{name}" SET (fillfactor = 100)')
        if variant in TRIGGER_VARIANTS:
            conn.execute(TRIGGER_VARIANTS[variant])
        if variant == "head, no trigger":
            conn.execute("DROP TRIGGER trades_minutes_insert ON trades")
    return url, "trades"


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _lean_copy(url: str, table: str, blocks: list[str]) -> tuple[float, float, int, str]:
    """Backend CPU seconds, wall seconds and bytes (table, indexes, rollup) of COPYing
    `blocks`, each committed, then VACUUM; and each index's bytes per trade."""
    with psycopg.connect(url) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        conn.commit()
        cpu, began = _backend_cpu(pid), time.perf_counter()
        for block in blocks:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY {table} ({queries.COPY_COLUMNS}) FROM STDIN") as copy,
            ):
                copy.write(block)
            conn.commit()
        cpu, wall = _backend_cpu(pid) - cpu, time.perf_counter() - began
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM {table}")
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class AS c "
            "WHERE c.oid = %(t)s::regclass "
            "OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %(t)s::regclass)",
            {"t": table},
        ).fetchone()[0]  # type: ignore[index]
        rollup = conn.execute("SELECT pg_total_relation_size('trade_minutes')").fetchone()[0]  # type: ignore[index]
        count = sum(block.count("\n") for block in blocks)
        index_sql = INDEX_SIZES_SQL.replace("'trades'", f"'{table}'")
        grown = conn.execute(index_sql).fetchall()
        # What the same indexes take built in one pass (packed to their fillfactor).
        conn.execute(f"REINDEX TABLE {table}")
        built = dict(conn.execute(index_sql).fetchall())
    each = ", ".join(
        f"{name} {float(b) / count:.1f} ({float(built[name]) / count:.1f} after REINDEX)"
        for name, b in grown
    )
    return cpu, wall, int(size) + int(rollup), each


#: Trades a minute in the dense run of `lean`: about BTCUSDT's (1.0-1.5 M trades a day).
LEAN_DENSE_PER_MINUTE = 1_000


def lean_part(admin: str, count: int, runs: int) -> None:
    TRIGGER_VARIANTS.update(_trigger_variants())
    dense = timedelta(minutes=count / LEAN_DENSE_PER_MINUTE)
    for label, span in (
        (f"{LEAN_DENSE_PER_MINUTE:,} trades a minute", dense),
        ("spread over 30 days (most minutes of a quiet symbol hold one trade)", queries.SPAN),
    ):
        saved, queries.SPAN = queries.SPAN, span
        try:
            lines = "".join(queries.trade_lines(count)).splitlines(keepends=True)
        finally:
            queries.SPAN = saved
        print(
            f"\nthe live month's write cost, {label}: {count:,} trades in committed "
            f"{LEAN_BATCH:,}-trade COPYs, {runs} runs, order alternating; backend CPU per "
            "trade (median), wall rate, bytes per trade (table, indexes, rollup):"
        )
        blocks = ["".join(lines[i : i + LEAN_BATCH]) for i in range(0, len(lines), LEAN_BATCH)]
        grouped = [_grouped(block) for block in blocks]
        found: dict[str, list[tuple[float, float, int, str]]] = {v: [] for v in LEAN_VARIANTS}
        for run in range(runs):
            for variant in LEAN_VARIANTS if run % 2 == 0 else LEAN_VARIANTS[::-1]:
                rows = grouped if "grouped" in variant else blocks
                found[variant].append(_lean_copy(*_lean_database(admin, variant), rows))
        seed = statistics.median(sample[0] for sample in found["seed"])
        for variant, samples in found.items():
            cpu = statistics.median(sample[0] for sample in samples)
            wall = statistics.median(sample[1] for sample in samples)
            size = statistics.median(sample[2] for sample in samples)
            print(
                f"  {variant:<20} {cpu / count * 1e6:6.2f} us/trade ({cpu / seed:.2f}x seed)  "
                f"{count / wall:>9,.0f} trades/s  {size / count:6.1f} bytes/trade "
                f"(indexes: {samples[0][3]})"
            )


def _queries_before_lean() -> Any:
    """`binprice.db.queries` as of the commit before 0011, loaded from git."""
    added = git("log", "-1", "--format=%H", "--diff-filter=A", "--", LEAN)
    text = git("show", f"{added}^:src/binprice/db/queries.py")
    module = types.ModuleType("queries_before_lean")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(text, "queries_before_lean", "exec"), module.__dict__)
    return module


def _queries_at(ref: str) -> Any:
    """`binprice.db.queries` as of git `ref`, loaded from git."""
    text = git("show", f"{ref}:src/binprice/db/queries.py")
    module = types.ModuleType(f"queries_at_{ref}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(text, module.__name__, "exec"), module.__dict__)
    return module


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{statistics.median(ordered):.3f} / {p95:.3f}"


def _lean_at_cells(conn: psycopg.Connection[Any], module: Any, moments: list[Any]) -> list[str]:
    """Per query and symbol: server execution, planning and client wall ms, p50 / p95."""
    cells = []
    for symbol in ("BTCUSDT", queries.QUIET[-1]):
        for name, sql, make in (
            ("at", module.AT_SQL, lambda t: {"ts": t, "before": False}),
            (
                "range 1h",
                module.RANGE_SQL,
                lambda t: {"start": t, "end": t + timedelta(hours=1, seconds=7)},
            ),
        ):
            plans = [
                conn.execute(
                    "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY, FORMAT JSON) " + sql,
                    {"symbols": [symbol], "market": 0, **make(t)},
                ).fetchone()
                for t in moments
            ]
            run = [float(p[0][0]["Execution Time"]) for p in plans if p is not None]
            plan = [float(p[0][0]["Planning Time"]) for p in plans if p is not None]
            wall = [
                client_ms(conn, sql, {"symbols": [symbol], "market": 0, **make(t)}) for t in moments
            ]
            prepared = []
            for t in moments:
                began = time.perf_counter()
                conn.execute(
                    sql, {"symbols": [symbol], "market": 0, **make(t)}, prepare=True
                ).fetchall()
                prepared.append((time.perf_counter() - began) * 1000)
            cells.append(
                f"    {name:<9}{symbol:<9} server {_percentiles(run)}  planning "
                f"{_percentiles(plan)}  client {_percentiles(wall)}  prepared "
                f"{_percentiles(prepared)}"
            )
    return cells


def lean_at_part(admin: str, count: int, runs: int) -> None:
    """`at` and `range` on the same head database: this checkout's queries, main's (0011, the
    walk bounded by ROW_SPAN), then with the covering index again and the queries before
    0011; then `at` after the first month was compressed."""
    from binprice.db.compress import compress_month
    from binprice.db.partitions import month_start
    from binprice.db.queries import price_at

    variants = [
        ("this checkout", importlib.import_module("binprice.db.queries")),
        ("main (0011)", _queries_at("main")),
        ("covering index (0002)", _queries_before_lean()),
    ]
    url, _ = build_at(admin, "bp_storage_leanat", "head", count)
    rng = random.Random(5)
    moments = [END - queries.SPAN + (queries.SPAN * rng.random()) for _ in range(runs)]
    print(
        f"\n`at` and `range` on {count:,} trades, ms, median / p95 of {runs} random times: "
        "server (EXPLAIN ANALYZE execution), its planning, client wall (execute + fetch):"
    )
    for round_ in (1, 2):  # twice, alternating, so that the machine's load hits both
        for label, module in variants:
            if module is variants[-1][1]:
                continue
            with psycopg.connect(url, autocommit=True) as conn:
                print(f"  {label} (round {round_})")
                print("\n".join(_lean_at_cells(conn, module, moments)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_lean_revision().COVERING_INDEX)
        conn.execute("VACUUM ANALYZE trades")
        print(f"  {variants[-1][0]}")
        print("\n".join(_lean_at_cells(conn, variants[-1][1], moments)))
        month = month_start(END - queries.SPAN)
        done = compress_month(conn, month)
        print(f"compressed {month:%Y-%m}: {done.trades:,} trades in {done.seconds:.1f} s")
        conn.execute("VACUUM ANALYZE trade_blocks")
        first = END - queries.SPAN
        ahead = month_start(month + timedelta(days=32)) - first  # the rest of that month
        inside = [first + ahead * rng.random() for _ in range(runs)]
        walls = [_wall_ms(lambda t=t: price_at(conn, t, ["BTCUSDT"])) for t in inside]
        print(
            f"  `at` BTCUSDT in the compressed month, library call, client ms: "
            f"{_percentiles(walls)} ({len(walls)} calls)"
        )


#: The revision before the market dimension (0012).
BEFORE_MARKET = "0011_lean_live_month"
#: Bytes of the month's trades: the heap with its TOAST, each index, the rollup.
MARKET_BYTES_SQL = """
SELECT 'heap', sum(pg_table_size(h.inhrelid)) FROM pg_inherits AS h
WHERE h.inhparent = 'trades'::regclass
UNION ALL
SELECT parent.relname, sum(pg_relation_size(x.indexrelid))
FROM pg_inherits AS h JOIN pg_index AS x ON x.indrelid = h.inhrelid
JOIN pg_inherits AS xi ON xi.inhrelid = x.indexrelid
JOIN pg_class AS parent ON parent.oid = xi.inhparent
WHERE h.inhparent = 'trades'::regclass GROUP BY parent.relname
UNION ALL
SELECT 'trade_minutes', pg_total_relation_size('trade_minutes')
"""


def market_part(admin: str, count: int, runs: int) -> None:
    saved, queries.SPAN = queries.SPAN, timedelta(minutes=count / LEAN_DENSE_PER_MINUTE)
    try:
        lines = "".join(queries.trade_lines(count)).splitlines(keepends=True)
    finally:
        queries.SPAN = saved
    blocks = ["".join(lines[i : i + LEAN_BATCH]) for i in range(0, len(lines), LEAN_BATCH)]
    print(
        f"\nthe live month's bytes per trade before and after the market column (0012): "
        f"{count:,} trades at {LEAN_DENSE_PER_MINUTE:,} a minute in committed "
        f"{LEAN_BATCH:,}-trade COPYs, VACUUMed; median of {runs} runs:"
    )
    found: dict[str, dict[str, list[int]]] = {}
    for run in range(runs):
        for revision in (BEFORE_MARKET, "head")[:: 1 if run % 2 == 0 else -1]:
            url = scratch(admin, "bp_storage_market", revision)
            make_months(url)
            _lean_copy(url, "trades", blocks)
            with psycopg.connect(url) as conn:
                for part, size in conn.execute(MARKET_BYTES_SQL).fetchall():
                    found.setdefault(revision, {}).setdefault(part, []).append(int(size))
    for revision, parts in found.items():
        total = sum(statistics.median(v) for v in parts.values())
        detail = "  ".join(
            f"{part} {statistics.median(v) / count:.1f}" for part, v in sorted(parts.items())
        )
        print(f"  {revision:<22} {total / count:6.1f} bytes/trade  ({detail})")


def lean_parts(admin: str, args: argparse.Namespace, parts: set[str]) -> None:
    if "market" in parts:
        market_part(admin, args.copy_trades, args.runs)
    if "lean" in parts:
        lean_part(admin, args.copy_trades, args.runs)
    if "leanat" in parts:
        lean_at_part(admin, args.trades, args.latency_runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a superuser URL; default: a throwaway server")
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--copy-trades", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--import-runs", type=int, default=3)
    parser.add_argument("--trades-per-day", type=int, default=750_000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "binprice-import-bench"
    )
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument(
        "--only", default="size,reindex,migrate,copy,import,fresh,latency,months,reads"
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    with server(args.database_url, "postgres") as admin:
        if parts & {"size", "reindex", "migrate", "latency"}:
            before, after = size_part(admin, args.trades)
            if "latency" in parts:
                print("\n0007 (unpartitioned):")
                latency(before, args.latency_runs)
                print("\nhead (monthly partitions):")
                latency(after, args.latency_runs)
            if "reindex" in parts:
                reindex_part(before, after, args.trades)
            if "migrate" in parts:
                migrate_part(before, args.trades)
        if "copy" in parts:
            copy_part(admin, args.copy_trades, args.runs)
        if parts & {"import", "fresh"}:
            tree = importer.build(args.cache, args.trades_per_day, args.days)
            archive_server, archive = importer.serve(tree)
            try:
                with tempfile.TemporaryDirectory(prefix="binprice-storage-bench-") as tmp:
                    imports = Imports.prepare(archive, args.trades_per_day, args.days, Path(tmp))
                    if "import" in parts:
                        import_part(admin, imports, args.import_runs)
                    if "fresh" in parts:
                        fresh_part(args.copy_trades, imports)
            finally:
                archive_server.terminate()
                archive_server.wait()
        query_parts(admin, args, parts)
        if "months" in parts:
            months_part(admin, args.trades, args.months, args.latency_runs)
        lean_parts(admin, args, parts)


if __name__ == "__main__":
    main()
