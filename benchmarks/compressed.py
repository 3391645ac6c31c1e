"""`binprice db compress` measured (issue #18): bytes per trade of a month as rows and as
blocks, against Binance's zip of the same rows; the compress rate; reading blocks back.

    python benchmarks/compressed.py [--database-url URL] [--trades N] [--days D]
                                    [--rare-days D] [--runs N]

Data: `benchmarks/layouts.py`'s market model (a BTCUSDT-like tape calibrated on Binance's
archive, `--trades` over `--days` UTC days) and its rare symbol (one trade a minute for
`--rare-days` days), each in a database of its own at head, loaded by COPY into `trades`
(rollup triggers on), VACUUM ANALYZE. Then, per database:

1. the row form: the month's partition of trades (heap, TOAST, indexes) and the rollup, per
   trade; Binance's daily zips of the same rows (ms times);
2. `Store.compress` (what `binprice db compress` calls): the seconds it took and trades/s;
   VACUUM ANALYZE; the compressed month (its trade_blocks partition, the now empty row
   partition with its indexes, the rollup) per trade;
3. every trade read back through the `trades_all` view compared with a copy of the rows taken
   before, by text, both ways (`differ` must be 0); and the month's blocks read with
   `binprice.db.blocks.read_blocks` and decoded in Python (`decode_block`), trades/s, median
   of `--runs`;
4. reading the same trades from the rows (a second database loaded alike and not
   compressed) and from the blocks, alternating, median of `--runs` each: `binprice export
   SYMBOL -f csv|ndjson|binance -o /dev/null` end to end (a process each, start-up included)
   and `write_trades` in this process; `Store.trades()`; `candles` 1m and 1h over the tape's
   first day, aligned to minutes and not (17 s after the first minute, 19 s before the last).

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from layouts import DAY, Tape, archive_zip_bytes, load_rows, rare_trades, realistic_trades
from queries import server

import binprice
from binprice.compressed.codec import decode_block
from binprice.db.blocks import read_blocks
from binprice.export import write_trades

MONTH = datetime(DAY.year, DAY.month, 1, tzinfo=UTC)
COLUMNS = 'symbol, trade_id, price::text, quantity::text, "timestamp", is_buyer_maker'
_SIZE = "SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)"


def size(conn: psycopg.Connection[tuple[object, ...]], name: str) -> int:
    row = conn.execute(_SIZE, (name,)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def measure(admin: str, name: str, tape: Tape, days: int, runs: int) -> None:
    count = len(tape.ids)
    zipped = archive_zip_bytes(tape, micros=False)
    rows_url, _ = load_rows(admin, f"{name}_rows", tape, days)
    url, rate = load_rows(admin, name, tape, days)
    rows_part, blocks_part = f"trades_{MONTH:%Y_%m}", f"trade_blocks_{MONTH:%Y_%m}"
    with psycopg.connect(url, autocommit=True) as conn:
        rows_bytes, rollup = size(conn, rows_part), size(conn, "trade_minutes")
        conn.execute(f"CREATE TABLE saved AS SELECT {COLUMNS} FROM {rows_part}")
    print(f"\n{tape.symbol}: {count:,} trades over {days} day(s); COPY {rate:,.0f} trades/s")
    print(f"  Binance daily zips (ms times): {zipped / count:7.2f} bytes/trade")
    print(
        f"  rows:       partition {rows_bytes / count:7.2f} + rollup {rollup / count:6.2f} = "
        f"{(rows_bytes + rollup) / count:7.2f} bytes/trade"
    )
    with binprice.connect(url) as store:
        began = time.perf_counter()
        result = store.compress(settle=timedelta(0))
        spent = time.perf_counter() - began
    print(
        f"  compress: {spent:.1f} s, {count / spent:,.0f} trades/s "
        f"({[f'{m.month:%Y-%m} {m.trades:,}' for m in result.months]})"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        blocks, empty, rollup = (size(conn, n) for n in (blocks_part, rows_part, "trade_minutes"))
        (nblocks,) = conn.execute(f"SELECT count(*) FROM {blocks_part}").fetchone()  # type: ignore[misc]
        total = blocks + empty + rollup
        print(
            f"  compressed: blocks {blocks / count:7.2f} + empty row partition "
            f"{empty / count:5.2f} + rollup {rollup / count:6.2f} = {total / count:7.2f} "
            f"bytes/trade ({count / nblocks:,.0f} trades/block)"
        )
        back = f"SELECT {COLUMNS} FROM trades_all"
        (differ,) = conn.execute(
            f"SELECT (SELECT count(*) FROM (SELECT * FROM saved EXCEPT ALL {back}) AS a) + "
            f"(SELECT count(*) FROM ({back} EXCEPT ALL SELECT * FROM saved) AS b)"
        ).fetchone()  # type: ignore[misc]
        print(f"  trades_all against the rows: differ {differ}")
        rates = []
        for _ in range(runs):
            began = time.perf_counter()
            decoded = sum(
                len(decode_block(b))
                for b in read_blocks(conn, tape.symbol, MONTH, MONTH + timedelta(days=days + 1))
            )
            rates.append(decoded / (time.perf_counter() - began))
        print(
            f"  read_blocks + decode_block: {statistics.median(rates):,.0f} trades/s "
            f"(median of {runs}; {decoded:,} trades)"
        )
    reads(rows_url, url, tape.symbol, days, runs)


def _median_pair(
    runs: int, urls: tuple[str, str], once: Callable[[str], float]
) -> tuple[float, float]:
    """Median seconds of `once(url)` for the rows' and the blocks' database, alternating."""
    spent: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for took, url in zip(spent, urls, strict=True):
            took.append(once(url))
    return statistics.median(spent[0]), statistics.median(spent[1])


def export_times(
    urls: tuple[str, str],
    symbol: str,
    window: tuple[datetime, datetime],
    count: int,
    runs: int,
    *,
    formats: tuple[str, ...] = ("csv", "ndjson", "binance"),
) -> None:
    """`binprice export` (a process each) and `write_trades` of `symbol`'s window from the
    rows and from the blocks, median of `runs` alternating; `count` trades in the window."""
    start, end = window
    argv_window = ["--start", start.isoformat(), "--end", end.isoformat(), "-o", os.devnull]
    binprice_cli = str(Path(sys.executable).with_name("binprice"))
    for fmt in formats:

        def command(url: str, fmt: str = fmt) -> float:
            began = time.perf_counter()
            argv = [binprice_cli, "export", symbol, "-f", fmt, *argv_window, "--database-url", url]
            subprocess.run(argv, check=True)
            return time.perf_counter() - began

        def library(url: str, fmt: str = fmt) -> float:
            with psycopg.connect(url, autocommit=True) as conn, open(os.devnull, "wb") as out:
                began = time.perf_counter()
                write_trades(conn, [symbol], start, end, fmt, out=out)
                return time.perf_counter() - began

        for label, once in (("binprice export", command), ("write_trades", library)):
            rows, blocks = _median_pair(runs, urls, once)
            print(
                f"    {label + ' -f ' + fmt:26} {count / rows:11,.0f} | {count / blocks:11,.0f} "
                f"trades/s ({rows / blocks:.2f}x)"
            )


def candle_times(urls: tuple[str, str], symbol: str, day: datetime, days: int, runs: int) -> None:
    """`candles` 1m and 1h over `days` from `day`, whole minutes and not (17 s after the first,
    19 s before the last), rows and blocks, median of `runs` (at least 9) alternating."""
    first, last = day + timedelta(seconds=17), day + timedelta(days=days) - timedelta(seconds=19)
    for interval in ("1m", "1h"):
        for label, lo, hi in (
            ("minutes", day, day + timedelta(days=days)),
            ("unaligned", first, last),
        ):

            def candles(
                url: str, interval: str = interval, lo: datetime = lo, hi: datetime = hi
            ) -> float:
                with binprice.connect(url) as store:
                    store.candles([symbol], interval, lo, hi)  # warm: the first call connects
                    began = time.perf_counter()
                    store.candles([symbol], interval, lo, hi)
                    return time.perf_counter() - began

            rows, blocks = _median_pair(max(runs, 9), urls, candles)
            print(
                f"    {'candles ' + interval + ' ' + label:26} {rows * 1000:8.1f} ms | "
                f"{blocks * 1000:8.1f} ms ({blocks / rows:.2f}x the rows' time)"
            )


def reads(rows_url: str, blocks_url: str, symbol: str, days: int, runs: int) -> None:
    """Export, `Store.trades()` and candles of the same trades from rows and from blocks."""
    start, end = MONTH, MONTH + timedelta(days=days + 1)
    urls = (rows_url, blocks_url)
    with psycopg.connect(rows_url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM trades").fetchone()  # type: ignore[misc]
    print(f"  reads of the same {count:,} trades, rows | blocks (ratio), median of {runs}:")
    export_times(urls, symbol, (start, end), count, runs)

    def trades(url: str) -> float:
        with binprice.connect(url) as store:
            began = time.perf_counter()
            sum(1 for _ in store.trades(symbol, start, end))
            return time.perf_counter() - began

    rows, blocks = _median_pair(runs, urls, trades)
    print(
        f"    {'Store.trades()':26} {count / rows:11,.0f} | {count / blocks:11,.0f} "
        f"trades/s ({rows / blocks:.2f}x)"
    )
    candle_times(urls, symbol, MONTH, days, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a superuser URL; default: a throwaway server")
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rare-days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with server(args.database_url, "postgres") as admin:
        with psycopg.connect(admin) as conn:
            print(conn.execute("SELECT version()").fetchone()[0])  # type: ignore[index]
        measure(
            admin,
            "bp_compress_busy",
            realistic_trades(args.trades, DAY, args.days),
            args.days,
            args.runs,
        )
        measure(
            admin, "bp_compress_rare", rare_trades(DAY, args.rare_days), args.rare_days, args.runs
        )


if __name__ == "__main__":
    main()
