"""Benchmark of `latest`, `at` and `range` on a 10M-trade table, and of `binprice latest` start-up.

    python benchmarks/queries.py [--database-url URL] [--trades N] [--runs N]

Builds (through COPY) 2 busy symbols and 50 quiet ones over 30 days in the given database
(default: a throwaway embedded server), migrated to head; a table already holding N trades is
reused. Then prints server-side latency (EXPLAIN ANALYZE "Execution Time", median and p95 over
random timestamps) for a busy, a rare and a never-traded symbol; the COPY rate into the trades
table with and without migration 0002's index; and the whole-process time of
`binprice latest BTCUSDT` beside a minimal psycopg script running the same SQL.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import pty
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from binprice import embedded
from binprice.db import migrations
from binprice.db.queries import AT_SQL, LATEST_SQL, RANGE_SQL

END = datetime(2026, 5, 28, tzinfo=UTC)
SPAN = timedelta(days=30)
BUSY = {"BTCUSDT": 0.55, "ETHUSDT": 0.35}
QUIET_SHARE = 0.10
QUIET = [f"Q{i:02d}USDT" for i in range(50)]
# Geometric weights: the busiest quiet symbol gets ~15% of the quiet trades, the rarest ~50.
QUIET_DECAY = 0.85
NEVER = "NEVERUSDT"
CHUNK = 200_000
COPY_COLUMNS = "symbol, trade_id, price, quantity, timestamp, is_buyer_maker"


@contextmanager
def server(database_url: str | None, database: str = embedded.EMBEDDED_DATABASE) -> Iterator[str]:
    """`database_url`, else the URL of `database` on a throwaway embedded server, which is
    stopped and removed afterwards."""
    if database_url is not None:
        yield database_url
        return
    data_dir = Path(tempfile.mkdtemp(prefix="binprice-bench-"))
    data_dir.chmod(0o711)  # as root, the server's own user must reach the cluster below
    try:
        yield embedded.ensure_server(data_dir).url(database)
    finally:
        embedded.stop_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def trade_lines(count: int, seed: int = 1) -> Iterator[str]:
    """COPY text for `count` trades in time order: chunks of tab-separated lines."""
    rng = random.Random(seed)
    quiet_weights = [QUIET_DECAY**i for i in range(len(QUIET))]
    scale = QUIET_SHARE / sum(quiet_weights)
    symbols = [*BUSY, *QUIET]
    cum, total = [], 0.0
    for weight in [*BUSY.values(), *(w * scale for w in quiet_weights)]:
        total += weight
        cum.append(total)
    next_id = dict.fromkeys(symbols, 1_000_000)
    ticks = {s: rng.randint(100_000, 7_000_000) for s in symbols}  # price in cents
    start_ms = int((END - SPAN).timestamp() * 1000)
    step = SPAN / timedelta(milliseconds=1) / count
    second_text: dict[int, str] = {}
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        lines = []
        for k, symbol in enumerate(rng.choices(symbols, cum_weights=cum, k=n)):
            ms = start_ms + int((done + k) * step)
            sec, milli = divmod(ms, 1000)
            if sec not in second_text:
                second_text.clear()
                second_text[sec] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%d %H:%M:%S")
            price = ticks[symbol] = max(1, ticks[symbol] + rng.randint(-3, 3))
            tid = next_id[symbol] = next_id[symbol] + 1
            lines.append(
                f"{symbol}\t{tid}\t{price // 100}.{price % 100:02d}\t0.{rng.randint(1, 10**7):08d}"
                f"\t{second_text[sec]}.{milli:03d}+00\t{'t' if k & 1 else 'f'}\n"
            )
        done += n
        yield "".join(lines)


def copy_rows(conn: psycopg.Connection[Any], table: str, count: int, seed: int = 1) -> float:
    """COPY `count` generated trades into `table`; return rows per second (generation excluded)."""
    spent = 0.0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({COPY_COLUMNS}) FROM STDIN") as copy:
        for block in trade_lines(count, seed):
            began = time.perf_counter()
            copy.write(block)
            spent += time.perf_counter() - began
    began = time.perf_counter()
    conn.commit()
    spent += time.perf_counter() - began
    return count / spent


def build(url: str, count: int) -> None:
    """Migrate, then fill trades with `count` rows unless it already holds that many."""
    migrations.upgrade(url)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM trades").fetchone()
        if have is not None and have[0] == count:
            print(f"reusing trades table with {count:,} rows")
            return
        conn.execute("TRUNCATE trades")
        conn.commit()
        began = time.perf_counter()
        rate = copy_rows(conn, "trades", count)
        print(f"built {count:,} trades in {time.perf_counter() - began:.0f} s (COPY {rate:,.0f}/s)")
    # VACUUM sets the visibility map so range queries are index-only, as autovacuum would.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE trades")


def ingest_cost(url: str, count: int) -> None:
    """COPY rate into an empty copy of trades with 0001's indexes, then also with 0002's."""
    print(f"\nCOPY rate of {count:,} trades into an empty table (median of 3):")
    variants = {
        "0001 only (pk + timestamp,symbol)": [],
        "0001 + 0002 covering index": ["(symbol, timestamp, trade_id) INCLUDE (price, quantity)"],
        "0001 + plain (symbol, timestamp)": ["(symbol, timestamp)"],
    }
    for name, extra in variants.items():
        rates = []
        for attempt in range(3):
            with psycopg.connect(url) as conn:
                conn.execute("DROP TABLE IF EXISTS bench_ingest")
                conn.execute("CREATE TABLE bench_ingest (LIKE trades INCLUDING CONSTRAINTS)")
                conn.execute("ALTER TABLE bench_ingest ADD PRIMARY KEY (symbol, trade_id)")
                conn.execute('CREATE INDEX ON bench_ingest ("timestamp" DESC, symbol)')
                for columns in extra:
                    conn.execute(f"CREATE INDEX ON bench_ingest {columns}")
                conn.commit()
                rates.append(copy_rows(conn, "bench_ingest", count, seed=attempt + 7))
        print(f"  {name:<36} {statistics.median(rates):>10,.0f} rows/s")
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE bench_ingest")


def server_ms(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> float:
    """Server-side execution time of one statement, from EXPLAIN ANALYZE.

    TIMING OFF: per-node clock reads would otherwise add ~2x to a 180k-row aggregate.
    """
    row = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    return float(row[0][0]["Execution Time"])


def client_ms(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> float:
    """Round trip of the statement as binprice runs it (execute + fetch), in ms."""
    began = time.perf_counter()
    conn.execute(sql, params).fetchall()
    return (time.perf_counter() - began) * 1000


def latency(url: str, runs: int) -> None:
    """Median/p95 server-side latency per query and symbol class."""
    rng = random.Random(5)
    with psycopg.connect(url, autocommit=True) as conn:
        rare = conn.execute(
            "SELECT symbol FROM unnest(%s::text[]) s(symbol) ORDER BY "
            "(SELECT count(*) FROM trades t WHERE t.symbol = s.symbol) LIMIT 1",
            [QUIET],
        ).fetchone()
        assert rare is not None
        classes = {"busy BTCUSDT": "BTCUSDT", f"rare {rare[0]}": rare[0], "never": NEVER}

        def when() -> datetime:
            return (
                END - SPAN + timedelta(milliseconds=rng.randrange(int(SPAN.total_seconds() * 1000)))
            )

        def window(size: timedelta) -> Callable[[str], dict[str, Any]]:
            def params(symbol: str) -> dict[str, Any]:
                start = END - SPAN if size >= SPAN else when() - size
                return {"symbols": [symbol], "start": start, "end": start + size, "market": 0}

            return params

        queries: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
            "latest": (LATEST_SQL, lambda s: {"symbols": [s], "market": 0}),
            "at (nearest)": (
                AT_SQL,
                lambda s: {"symbols": [s], "ts": when(), "before": False, "market": 0},
            ),
            "at --before": (
                AT_SQL,
                lambda s: {"symbols": [s], "ts": when(), "before": True, "market": 0},
            ),
            "range 1 min": (RANGE_SQL, window(timedelta(minutes=1))),
            "range 1 day": (RANGE_SQL, window(timedelta(days=1))),
            "range 30 days": (RANGE_SQL, window(SPAN)),
        }
        print("\nlatency in ms, median / p95 / n. server: EXPLAIN (ANALYZE, TIMING OFF)")
        print("execution time; client: execute + fetch round trip over the Unix socket")
        print(f"  {'query':<22}" + "".join(f"{name:>26}" for name in classes))
        for label, (sql, make) in queries.items():
            n = max(5, runs // 10) if "30" in label else runs
            for measure, how in (("server", server_ms), ("client", client_ms)):
                cells = []
                for symbol in classes.values():
                    samples = sorted(how(conn, sql, make(symbol)) for _ in range(n))
                    p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
                    cells.append(f"{statistics.median(samples):9.3f} / {p95:8.3f} / {n:<3}")
                print(f"  {label:<14}{measure:<8}" + "".join(f"{c:>26}" for c in cells))


_RAW_SCAN_SQL = """
SELECT count(*) FROM (
    SELECT trade_id, lag(trade_id) OVER (PARTITION BY symbol ORDER BY trade_id) AS prev
    FROM trades WHERE timestamp >= %(start)s AND timestamp < %(end)s
) AS pairs WHERE trade_id <> prev + 1
"""


def verify(url: str, runs: int) -> None:
    """`gaps --verify` over the whole 30 days (every symbol), through the rollup; beside it the
    raw window-function scan of every stored id it replaced; then again with a hole."""
    from binprice.db.duplicates import find_duplicates
    from binprice.db.gaps import verify_gaps

    window = {"start": END - SPAN, "end": END}

    def timed(conn: psycopg.Connection[Any]) -> tuple[float, int]:
        began = time.perf_counter()
        result = verify_gaps(conn, **window)
        return (time.perf_counter() - began) * 1000, sum(s.missing for s in result.symbols)

    def timed_result(conn: psycopg.Connection[Any]) -> tuple[float, Any]:
        began = time.perf_counter()
        result = verify_gaps(conn, **window)
        return (time.perf_counter() - began) * 1000, result

    def duplicates_ms(conn: psycopg.Connection[Any]) -> float:
        began = time.perf_counter()
        symbols = [r[0] for r in conn.execute("SELECT DISTINCT symbol FROM trade_minutes")]
        find_duplicates(conn, symbols, [window["start"]] * len(symbols), window["end"])
        return (time.perf_counter() - began) * 1000

    with psycopg.connect(url, autocommit=True) as conn:
        first, _ = timed(conn)
        samples = sorted(timed(conn)[0] for _ in range(runs))
        raw = statistics.median(server_ms(conn, _RAW_SCAN_SQL, window) for _ in range(3))
        with conn.transaction():
            hole = conn.execute(
                "SELECT trade_id FROM trades WHERE symbol = 'BTCUSDT' ORDER BY trade_id "
                "OFFSET 2000000 LIMIT 1"
            ).fetchone()
            assert hole is not None
            conn.execute(
                "DELETE FROM trades WHERE symbol = 'BTCUSDT' AND trade_id BETWEEN %s AND %s",
                (hole[0], hole[0] + 999),
            )
            holed = sorted(timed(conn) for _ in range(runs))
            raise psycopg.Rollback()  # the table stays as built
        with conn.transaction():
            # An archive of another market imported beside the live ids: 1,000 ids again, ten
            # days earlier, at another price.
            conn.execute(
                "INSERT INTO trades SELECT symbol, trade_id, price + 1, quantity, "
                "timestamp - interval '10 days', is_buyer_maker FROM trades "
                "WHERE symbol = 'BTCUSDT' ORDER BY trade_id OFFSET 3000000 LIMIT 1000"
            )
            twice = sorted(
                (t, sum(s.duplicate_ids for s in r.symbols))
                for t, r in (timed_result(conn) for _ in range(runs))
            )
            raise psycopg.Rollback()
        clean = statistics.median(duplicates_ms(conn) for _ in range(runs))
        print(f"\ngaps --verify over {SPAN.days} days, every symbol, wall ms (median of {runs}):")
        print(f"  first call on this connection     {first:9.1f}")
        print(f"  through the rollup                {statistics.median(samples):9.1f}")
        print(
            f"  with a 1,000-id hole              {statistics.median(t for t, _ in holed):9.1f}"
            f"  (finds {holed[0][1]:,} missing ids)"
        )
        print(f"  raw scan of every id (server)     {raw:9.1f}")
        print(f"  of which the duplicate-id check   {clean:9.1f}")
        print(
            f"  with 1,000 ids stored twice       {statistics.median(t for t, _ in twice):9.1f}"
            f"  (finds {twice[0][1]:,} ids stored twice)"
        )


def _cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _run(
    argv: list[str], env: dict[str, str], *, terminal: bool = False, cpu: list[float] | None = None
) -> float:
    """Wall-clock seconds of one run, stdout to a pipe or to a pseudo-terminal; its CPU
    seconds (user + system, the kernel's count for the finished child) go to `cpu`."""
    master, slave = pty.openpty() if terminal else (-1, subprocess.PIPE)
    cpu_before = _cpu_of_children()
    began = time.perf_counter()
    done = subprocess.run(argv, stdout=slave, stderr=subprocess.PIPE, env=env, check=False)
    took = time.perf_counter() - began
    if cpu is not None:
        cpu.append(_cpu_of_children() - cpu_before)
    if terminal:
        os.close(master)
        os.close(slave)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.decode()}")
    return took


def whole_process(url: str, runs: int) -> None:
    """`binprice latest BTCUSDT` against the minimal psycopg script: the four interleaved, run
    after run, so that the machine's load falls on each alike; medians and per-run ratios. The
    fourth is the same command with Python's cycle collector left as it is (the console
    script's one-shot policy, `binprice.cli.ONE_SHOT`, skipped).

    Bytecode as an installed binprice has it: an editable checkout under
    PYTHONDONTWRITEBYTECODE would recompile binprice's modules on every run (psycopg's are
    precompiled by pip), so that is unset and one warm-up run of each writes the caches."""
    script = (
        "import sys, psycopg\n"
        "conn = psycopg.connect(sys.argv[1], autocommit=True)\n"
        f"rows = conn.execute({LATEST_SQL!r}, {{'symbols': ['BTCUSDT'], 'market': 0}}).fetchall()\n"
        "print(rows)\n"
    )
    binprice = shutil.which("binprice", path=str(Path(sys.executable).parent)) or "binprice"
    env = {**os.environ, "BINPRICE_DATABASE_URL": url}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    bare_argv = [sys.executable, "-c", script, url]
    latest_argv = [binprice, "latest", "BTCUSDT"]
    # The same command without `binprice.cli.main`'s collector policy (ONE_SHOT), for comparison.
    collected = "import sys; sys.argv[0] = 'binprice'; from binprice.cli._app import main; main()"
    collected_argv = [sys.executable, "-c", collected, "latest", "BTCUSDT"]
    for argv in (bare_argv, latest_argv, collected_argv):
        _run(argv, env)
    bare, piped, tty, with_gc = [], [], [], []
    bare_cpu: list[float] = []
    piped_cpu: list[float] = []
    with_gc_cpu: list[float] = []
    for _ in range(runs):
        bare.append(_run(bare_argv, env, cpu=bare_cpu))
        piped.append(_run(latest_argv, env, cpu=piped_cpu))
        tty.append(_run(latest_argv, env, terminal=True))
        with_gc.append(_run(collected_argv, env, cpu=with_gc_cpu))
    median = statistics.median
    ratios = sorted(p / b for p, b in zip(piped, bare, strict=True))
    cpu_ratios = sorted(p / b for p, b in zip(piped_cpu, bare_cpu, strict=True))
    print(f"\nwhole process, {runs} interleaved runs (medians):")
    print(f"  minimal psycopg script            {median(bare) * 1000:7.1f} ms")
    print(
        f"  binprice latest BTCUSDT (pipe)    {median(piped) * 1000:7.1f} ms  = "
        f"{median(piped) / median(bare):.2f}x (run by run: median {median(ratios):.2f}x, "
        f"p90 {ratios[int(len(ratios) * 0.9)]:.2f}x)"
    )
    print(
        f"  binprice latest BTCUSDT (tty)     {median(tty) * 1000:7.1f} ms  = "
        f"{median(tty) / median(bare):.2f}x"
    )
    print(
        f"  CPU (user + system), pipe         {median(piped_cpu) * 1000:7.1f} ms  = "
        f"{median(piped_cpu) / median(bare_cpu):.2f}x of the script's "
        f"{median(bare_cpu) * 1000:.1f} ms (run by run: median {median(cpu_ratios):.2f}x)"
    )
    print(
        f"  the same, collector as Python's   {median(with_gc) * 1000:7.1f} ms  = "
        f"{median(with_gc) / median(bare):.2f}x; CPU {median(with_gc_cpu) * 1000:.1f} ms = "
        f"{median(with_gc_cpu) / median(bare_cpu):.2f}x (no ONE_SHOT policy)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a throwaway embedded server")
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=200, help="samples per latency cell")
    parser.add_argument("--process-runs", type=int, default=20)
    parser.add_argument("--ingest-trades", type=int, default=1_000_000)
    parser.add_argument(
        "--only", default="latency,process,ingest,verify", help="comma-separated parts to run"
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    with server(args.database_url) as url:
        build(url, args.trades)
        if "latency" in parts:
            latency(url, args.runs)
        if "process" in parts:
            whole_process(url, args.process_runs)
        if "ingest" in parts:
            ingest_cost(url, args.ingest_trades)
        if "verify" in parts:
            verify(url, max(3, args.runs // 20))


if __name__ == "__main__":
    main()
