"""Benchmark of `export` on the 10M-trade table of `benchmarks/queries.py`.

    python benchmarks/export.py [--database-url URL] [--runs N] [--formats csv,ndjson,...]

Builds (or reuses) the table of `benchmarks/queries.py`, then writes every trade of BTCUSDT
over its 30 days (~5.5M trades) to a file through `binprice.export`, per format, and prints
trades/s and MB/s (median of the runs, wall clock around the library call, file written to
--directory) and the process's peak RSS, which stays flat whatever the window (streaming).
Parquet (pyarrow) goes through a server-side cursor and is much slower; it is measured over one
day unless --parquet-days says otherwise. Prints numbers; asserts nothing.

    python benchmarks/export.py --versus-compressed [--database-url ADMIN_URL] [--runs N]

Rows against compressed months (issue #18 item 3), on the same server: the table is built in
a database `--rows-db` (its months made with `ensure_partitions`, VACUUM ANALYZE), copied as
`--blocks-db` (CREATE DATABASE … TEMPLATE) whose closed months `Store.compress` compresses;
both are reused when present. Then, alternating rows and blocks, median of the runs: the
command `binprice export BTCUSDT -f FMT -o /dev/null` over the window (a process each,
start-up included), `write_trades` in this process, and `candles` 1m and 1h over one day
aligned to minutes and not (17 s after its first minute, 19 s before its last).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from compressed import candle_times, export_times
from psycopg.conninfo import make_conninfo
from queries import END, SPAN, build, server

import binprice
from binprice.db.partitions import ensure_partitions
from binprice.export import write_trades

SYMBOL = "BTCUSDT"


def run(url: str, fmt: str, days: float, directory: Path, runs: int) -> None:
    start = END - min(SPAN, timedelta(days=days))
    target = directory / f"export.{fmt}"
    rates, sizes, rows = [], [], 0
    for _ in range(runs):
        with psycopg.connect(url, autocommit=True) as conn, target.open("wb") as out:
            began = time.perf_counter()
            rows = write_trades(conn, [SYMBOL], start, END, fmt, out=out)
            out.flush()
            elapsed = time.perf_counter() - began
        rates.append(rows / elapsed)
        sizes.append(target.stat().st_size / elapsed / 1e6)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runs_text = ", ".join(f"{r / 1000:,.0f}k" for r in rates)
    print(
        f"  {fmt:<8} {rows:>10,} trades  {statistics.median(rates):>11,.0f} trades/s "
        f"{statistics.median(sizes):6.1f} MB/s  (runs: {runs_text}; peak RSS so far {rss:.0f} MB)"
    )
    target.unlink()


def _database(admin: str, name: str) -> str:
    return make_conninfo(admin, dbname=name)


def prepare(admin: str, rows_db: str, blocks_db: str, trades: int) -> tuple[str, str]:
    """The rows' and the blocks' database URLs, built (or reused) as the docstring says."""
    rows_url, blocks_url = _database(admin, rows_db), _database(admin, blocks_db)
    with psycopg.connect(admin, autocommit=True) as conn:
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        if rows_db not in have:
            conn.execute(f'CREATE DATABASE "{rows_db}"')
    if blocks_db not in have:
        build(rows_url, trades)
        with psycopg.connect(rows_url, autocommit=True) as conn:
            ensure_partitions(conn, END - SPAN, END)
            conn.execute("VACUUM ANALYZE trades")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{blocks_db}" TEMPLATE "{rows_db}"')
    with binprice.connect(blocks_url) as store:
        done = store.compress(END.replace(day=1) + timedelta(days=32))
        for month in done.months:
            print(f"compressed {month.month:%Y-%m}: {month.trades:,} trades")
    return rows_url, blocks_url


def versus(urls: tuple[str, str], formats: list[str], days: float, runs: int) -> None:
    """Export and candles of the same trades from rows and from compressed months."""
    start = END - min(SPAN, timedelta(days=days))
    with psycopg.connect(urls[0]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM trades WHERE symbol = %s AND timestamp >= %s AND timestamp < %s",
            (SYMBOL, start, END),
        ).fetchone()
        count = int(row[0]) if row else 0
    print(
        f"\n{SYMBOL}, {count:,} trades, rows | compressed (rows' time / compressed time), "
        f"median of {runs}, alternating:"
    )
    export_times(urls, SYMBOL, (start, END), count, runs, formats=tuple(formats))
    day = datetime(END.year, END.month, END.day, tzinfo=UTC) - timedelta(days=2)
    candle_times(urls, SYMBOL, day, 1, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a throwaway embedded server")
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="csv,ndjson,binance,parquet")
    parser.add_argument("--days", type=float, default=30, help="window for csv/ndjson/binance")
    parser.add_argument("--parquet-days", type=float, default=1)
    parser.add_argument("--directory", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--versus-compressed", action="store_true")
    parser.add_argument("--rows-db", default="bp_export_rows")
    parser.add_argument("--blocks-db", default="bp_export_blocks")
    args = parser.parse_args()
    if args.versus_compressed:
        with server(args.database_url, "postgres") as admin:
            urls = prepare(admin, args.rows_db, args.blocks_db, args.trades)
            formats = [f for f in args.formats.split(",") if f != "parquet"]
            versus(urls, formats, args.days, args.runs)
        return
    with server(args.database_url) as url:
        build(url, args.trades)
        print(f"\nexport of {SYMBOL} to a file in {args.directory}, median of {args.runs}:")
        for fmt in args.formats.split(","):
            days = args.parquet_days if fmt == "parquet" else args.days
            run(url, fmt, days, args.directory, args.runs)


if __name__ == "__main__":
    main()
