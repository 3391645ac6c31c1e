"""The live month over its life (issue #18 item 4): bytes per trade while its closed days are
compressed with a lag (`ingest --compress-days-after`, `db compress --days-before`), the
compress time per day, how long live writers waited meanwhile, and `at`/`range`/`latest` on
the month afterwards.

    python benchmarks/livemonth.py [--database-url URL] [--trades-per-day N] [--days D]
                                   [--lag-days L] [--batch N] [--runs N]

Data: `benchmarks/layouts.py`'s BTCUSDT-like tape, `--trades-per-day` trades a UTC day (a
day's tape of its own, ids continuing), written into a database at head on a throwaway
server as a live run writes: one COPY into `trades` per `--batch` trades, committed each
(rollup trigger on). Per simulated day D (0-based):

1. the first half of day D's batches, each batch's commit time recorded ("alone");
2. then, as a running ingest does at noon of day D, `compress_days` of the days that ended
   `--lag-days` ago, the days before D - lag (one REPEATABLE READ transaction a day, then
   VACUUM of the row partition) in a thread, while day D's remaining batches go on being
   written; the batches committed while it ran are recorded ("during");
3. at the end of days 3, 10 and 30 (and the last), the month's bytes: its row partition's
   heap (+ TOAST, free space map, visibility map) and indexes, its trade_blocks partition,
   and the rollup, per trade written so far.

Then `at`, `range` (one hour) and `latest` through `Store`, median of `--runs` each, on times
in the compressed days and in the days still rows; and every trade read back through
`trades_all` counted against what was written (`lost` and `extra` must be 0).

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from layouts import COLUMNS, DAY, Tape, copy_lines, realistic_trades, scratch
from queries import server

import binprice
from binprice.db.compress import DayCompression
from binprice.db.compress_days import compress_days
from binprice.db.partitions import ensure_partitions

MONTH = datetime(DAY.year, DAY.month, 1, tzinfo=UTC)
ONE_DAY = timedelta(days=1)
#: Months ending by then are compressed whole: none here (the month stays live).
NEVER = datetime.min.replace(tzinfo=UTC)
CHECKPOINTS = (3, 10, 30)
_SIZES = """
SELECT pg_table_size(%(rows)s::regclass), pg_indexes_size(%(rows)s::regclass),
       coalesce(pg_total_relation_size(to_regclass(%(blocks)s)), 0),
       pg_total_relation_size('trade_minutes')"""


def day_tape(per_day: int, index: int) -> Tape:
    """Day `index`'s trades, ids continuing the days before."""
    tape = realistic_trades(per_day, DAY + timedelta(days=index), 1, seed=7 + index)
    offset = index * per_day
    return Tape(tape.symbol, [i + offset for i in tape.ids], *_rest(tape))


def _rest(tape: Tape) -> tuple[list[int], list[int], list[int], list[bool]]:
    return tape.ticks, tape.lots, tape.ms, tape.maker


def batches(tape: Tape, size: int) -> list[str]:
    lines = list(copy_lines(tape))
    return ["".join(lines[i : i + size]) for i in range(0, len(lines), size)]


def write(conn: psycopg.Connection[tuple[object, ...]], batch: str) -> float:
    """One committed COPY of `batch`; its seconds."""
    began = time.perf_counter()
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(f"COPY trades ({COLUMNS}) FROM STDIN") as copy,
    ):
        copy.write(batch)
    return time.perf_counter() - began


def sizes(conn: psycopg.Connection[tuple[object, ...]], trades: int, day: int) -> None:
    names = {"rows": f"trades_{MONTH:%Y_%m}", "blocks": f"trade_blocks_{MONTH:%Y_%m}"}
    heap, indexes, blocks, rollup = conn.execute(_SIZES, names).fetchone()  # type: ignore[misc]
    month = heap + indexes + blocks
    print(
        f"  day {day:2d}: {trades:>11,} trades | rows heap {heap / trades:6.1f} + indexes "
        f"{indexes / trades:6.1f} + blocks {blocks / trades:5.1f} = {month / trades:6.1f} "
        f"B/trade (+ rollup {rollup / trades:4.1f}: {(month + rollup) / trades:6.1f})"
    )


def live_month(url: str, args: argparse.Namespace) -> tuple[list[DayCompression], int]:
    alone: list[float] = []
    during: list[float] = []
    done: list[DayCompression] = []
    written = 0
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_partitions(conn, MONTH, MONTH + timedelta(days=31))
        for index in range(args.days):
            chunks = batches(day_tape(args.trades_per_day, index), args.batch)
            half = len(chunks) // 2
            alone += [write(conn, chunk) for chunk in chunks[:half]]
            cut = MONTH + (index - args.lag_days) * ONE_DAY  # mid-day D: ended lag ago
            worker = threading.Thread(target=_compress, args=(url, cut, done))
            worker.start()
            for chunk in chunks[half:]:
                took = write(conn, chunk)
                (during if worker.is_alive() else alone).append(took)
            worker.join()
            written += args.trades_per_day
            if index + 1 in CHECKPOINTS or index + 1 == args.days:
                sizes(conn, written, index + 1)
    _print_waits(alone, during, args.batch)
    return done, written


def _compress(url: str, cut: datetime, done: list[DayCompression]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        done += compress_days(conn, cut, months_before=NEVER)


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _print_waits(alone: list[float], during: list[float], batch: int) -> None:
    print(f"  commit of a {batch:,}-trade batch, ms (p50 / p99 / max):")
    for label, values in (("alone", alone), ("during a day's compress", during)):
        if values:
            print(
                f"    {label:<24} {_ms(values, 0.5):7.1f} / {_ms(values, 0.99):7.1f} / "
                f"{1000 * max(values):7.1f}  ({len(values):,} batches)"
            )


def _print_days(done: list[DayCompression]) -> None:
    if not done:
        return
    seconds = [d.seconds for d in done]
    rates = [d.trades / d.seconds for d in done if d.seconds]
    print(
        f"  compress per day ({len(done)} days): median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s, {statistics.median(rates):,.0f} trades/s; blocks "
        f"{statistics.median(d.bytes_per_trade or 0 for d in done):.2f} B/trade (own bytes); "
        f"retries {sum(d.retries for d in done)}"
    )


def _median_ms(call: object, runs: int) -> float:
    spent = []
    for _ in range(runs):
        began = time.perf_counter()
        call()  # type: ignore[operator]
        spent.append(time.perf_counter() - began)
    return 1000 * statistics.median(spent)


def reads(url: str, args: argparse.Namespace, compressed_days: int) -> None:
    """`at`, `range` and `latest` on compressed days and on days still rows."""
    rng = random.Random(5)
    symbol = realistic_trades(10, DAY, 1).symbol
    spans = {
        "compressed days": (MONTH, MONTH + compressed_days * ONE_DAY),
        "days still rows": (MONTH + compressed_days * ONE_DAY, MONTH + args.days * ONE_DAY),
    }
    print(f"  reads through Store, ms (median of {args.runs}):")
    with binprice.connect(url) as store:
        latest = _median_ms(lambda: store.latest([symbol]), args.runs)
        print(f"    latest                     {latest:7.2f}")
        for label, (lo, hi) in spans.items():
            if hi <= lo:
                continue
            span = (hi - lo).total_seconds() - 3600
            moments = [lo + timedelta(seconds=rng.uniform(0, span)) for _ in range(args.runs)]
            at = [_median_ms(lambda m=m: store.at(m, [symbol]), 1) for m in moments]
            ranges = [
                _median_ms(lambda m=m: store.range(m, m + timedelta(hours=1), [symbol]), 1)
                for m in moments
            ]
            print(
                f"    {label:<16} at {statistics.median(at):7.2f}   range 1h "
                f"{statistics.median(ranges):7.2f}"
            )


def check(url: str, written: int) -> None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT trade_id) FROM trades_all").fetchone()
    total, distinct = row  # type: ignore[misc]
    lost, extra = written - distinct, total - distinct
    print(f"  trades_all: {total:,} trades; lost {lost:,}, extra {extra:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a superuser URL; default: a throwaway server")
    parser.add_argument("--trades-per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--lag-days", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(
        f"live month: {args.trades_per_day:,} trades a day for {args.days} days, batches of "
        f"{args.batch:,}, days compressed {args.lag_days} day(s) after they end"
    )
    with server(args.database_url) as admin:
        url = scratch(admin, "livemonth", "head")
        done, written = live_month(url, args)
        _print_days(done)
        compressed = max((d.day for d in done), default=MONTH - ONE_DAY) + ONE_DAY
        reads(url, args, (compressed - MONTH).days)
        check(url, written)


if __name__ == "__main__":
    main()
