"""Benchmark of the candle query on the 10M-trade table of `benchmarks/queries.py`.

    python benchmarks/candles.py [--database-url URL] [--runs N]

Builds (or reuses) the table of `benchmarks/queries.py` (2 busy symbols and 50 quiet ones over
30 days), then prints the server-side time (EXPLAIN ANALYZE "Execution Time", median and p95)
of `candles` for BTCUSDT and a rare symbol: a year of 1d candles (the table holds 30 days, so
that window reads all of them), a day of 1m candles at random days, 30 days of 1h, 1w and 1M,
each with unaligned window ends (so both partial-minute edges are read from raw trades).

`--ingest-cost` measures what the rollup costs on ingest: the rate of batched COPYs (one
statement and commit per batch, as the ingestor writes) into fresh databases at revision 0003
(no rollup), 0004 (the rollup) and head (0005: first/last id, open, close), in the same run.

`--full-year` also measures a year of 1d and 1h candles over a year of rollup minutes (525,600
rows for one synthetic symbol, inserted inside a transaction that is rolled back afterwards, so
the table is left as it was). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from queries import COPY_COLUMNS, END, QUIET, SPAN, build, server, server_ms, trade_lines

from binprice.db import migrations
from binprice.db.candles import INTERVALS, candle_query
from binprice.db.queries import RANGE_SQL

YEAR = timedelta(days=365)
DAY = timedelta(days=1)
#: Window ends off the minute, so every run also reads the raw partial minutes.
RAGGED = timedelta(seconds=17, milliseconds=321)
FULL_YEAR_SYMBOL = "YEARUSDT"

FILL_YEAR_SQL = """
INSERT INTO trade_minutes
    (symbol, minute, trades, volume, notional, high, low, first_id, last_id, open, close)
SELECT %(symbol)s, %(start)s::timestamptz + i * interval '1 minute', 120, 1.23456789,
       85000.12345678, 70001.01, 69999.99, i * 120, i * 120 + 119, 70000.00, 70000.50
FROM generate_series(0, %(minutes)s - 1) AS i
"""


def measure(
    conn: psycopg.Connection[Any], name: str, symbol: str, start: datetime, end: datetime
) -> float:
    sql, params = candle_query(INTERVALS[name])
    params.update(symbols=[symbol], start=start, end=end)
    return server_ms(conn, sql, params)


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(f"  {label:<44} {statistics.median(ordered):8.2f} / {p95:8.2f} / {len(ordered)}")


def table(url: str, runs: int) -> None:
    rng = random.Random(3)
    first_day = END - SPAN
    with psycopg.connect(url, autocommit=True) as conn:
        print("\nserver-side ms (EXPLAIN ANALYZE, TIMING OFF), median / p95 / n")
        for symbol in ("BTCUSDT", QUIET[-1]):
            cases: dict[str, tuple[str, Any]] = {
                "a year of 1d": ("1d", lambda: (END - YEAR + RAGGED, END - RAGGED)),
                "a day of 1m (random day)": (
                    "1m",
                    lambda: (s := first_day + rng.randrange(29) * DAY + RAGGED, s + DAY),
                ),
                "30 days of 1h": ("1h", lambda: (first_day + RAGGED, END - RAGGED)),
                "30 days of 1w": ("1w", lambda: (first_day + RAGGED, END - RAGGED)),
                "a year of 1M": ("1M", lambda: (END - YEAR + RAGGED, END - RAGGED)),
            }
            for label, (name, window) in cases.items():
                samples = [measure(conn, name, symbol, *window()) for _ in range(runs)]
                report(f"{symbol} {label}", samples)
            # The same run's `range` over the 30 days: a yardstick when the machine is busy.
            params = {
                "symbols": [symbol],
                "start": first_day + RAGGED,
                "end": END - RAGGED,
                "market": 0,
            }
            samples = [server_ms(conn, RANGE_SQL, params) for _ in range(runs)]
            report(f"{symbol} (reference: range over 30 days)", samples)


def full_year(url: str, runs: int) -> None:
    with psycopg.connect(url) as conn:
        start = END - YEAR
        conn.execute(
            FILL_YEAR_SQL,
            {
                "symbol": FULL_YEAR_SYMBOL,
                "start": start,
                "minutes": int(YEAR / timedelta(minutes=1)),
            },
        )
        conn.execute("ANALYZE trade_minutes")
        print(f"\na real year of rollup minutes ({FULL_YEAR_SYMBOL}, rolled back afterwards)")
        for name in ("1d", "1h", "1w"):
            samples = [
                measure(conn, name, FULL_YEAR_SYMBOL, start + RAGGED, END - RAGGED)
                for _ in range(runs)
            ]
            report(f"{FULL_YEAR_SYMBOL} a year of {name}", samples)
        conn.rollback()


REVISIONS = ("0003_gaps", "0004_trade_minutes", "head")


def scratch(url: str, name: str, revision: str) -> str:
    """A fresh database on the server of ``url``, migrated to ``revision``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(url)
    scratch_url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    migrations.upgrade(scratch_url, revision)
    return scratch_url


def batched_copy(url: str, count: int, batch: int, seed: int) -> float:
    """Rows per second of COPYing ``count`` trades in ``batch``-row statements, each committed."""
    spent = 0.0
    with psycopg.connect(url) as conn:
        for block in trade_lines(count, seed):
            lines = block.splitlines(keepends=True)
            for i in range(0, len(lines), batch):
                text = "".join(lines[i : i + batch])
                began = time.perf_counter()
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY trades ({COPY_COLUMNS}) FROM STDIN") as c,
                ):
                    c.write(text)
                conn.commit()
                spent += time.perf_counter() - began
    return count / spent


def ingest_cost(url: str, count: int, runs: int) -> None:
    print(f"\nCOPY rate, {count:,} trades per run, median of {runs} (runs interleaved):")
    for batch in (1_000, 25_000):
        rates: dict[str, list[float]] = {revision: [] for revision in REVISIONS}
        for attempt in range(runs):
            for revision in REVISIONS:
                target = scratch(url, "bench_rollup_cost", revision)
                rates[revision].append(batched_copy(target, count, batch, seed=attempt + 11))
        base = statistics.median(rates[REVISIONS[0]])
        for revision, samples in rates.items():
            rate = statistics.median(samples)
            print(
                f"  batch {batch:>6,}  {revision:<20} {rate:>10,.0f} trades/s  {rate / base:5.2f}x"
            )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_rollup_cost WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a throwaway embedded server")
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30, help="samples per cell")
    parser.add_argument("--full-year", action="store_true", help="also a real year of minutes")
    parser.add_argument("--ingest-cost", type=int, default=0, help="trades per run; 0: skip")
    parser.add_argument("--only-ingest-cost", action="store_true")
    args = parser.parse_args()
    with server(args.database_url) as url:
        if not args.only_ingest_cost:
            build(url, args.trades)
            table(url, args.runs)
            if args.full_year:
                full_year(url, max(5, args.runs // 3))
        if args.ingest_cost:
            ingest_cost(url, args.ingest_cost, max(3, args.runs // 10))


if __name__ == "__main__":
    main()
