"""Benchmark of `export` on the 10M-trade table of `benchmarks/queries.py`.

    python benchmarks/export.py [--database-url URL] [--runs N] [--formats csv,ndjson,...]

Builds (or reuses) the table of `benchmarks/queries.py`, then writes every trade of BTCUSDT
over its 30 days (~5.5M trades) to a file through `binprice.export`, per format, and prints
trades/s and MB/s (median of the runs, wall clock around the library call, file written to
--directory) and the process's peak RSS, which stays flat whatever the window (streaming).
Parquet (pyarrow) goes through a server-side cursor and is much slower; it is measured over one
day unless --parquet-days says otherwise. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from queries import END, SPAN, build, server

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a throwaway embedded server")
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="csv,ndjson,binance,parquet")
    parser.add_argument("--days", type=float, default=30, help="window for csv/ndjson/binance")
    parser.add_argument("--parquet-days", type=float, default=1)
    parser.add_argument("--directory", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    with server(args.database_url) as url:
        build(url, args.trades)
        print(f"\nexport of {SYMBOL} to a file in {args.directory}, median of {args.runs}:")
        for fmt in args.formats.split(","):
            days = args.parquet_days if fmt == "parquet" else args.days
            run(url, fmt, days, args.directory, args.runs)


if __name__ == "__main__":
    main()
