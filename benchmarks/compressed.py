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
   of `--runs`.

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from layouts import DAY, Tape, archive_zip_bytes, load_rows, rare_trades, realistic_trades
from queries import server

import binprice
from binprice.compressed.codec import decode_block
from binprice.db.blocks import read_blocks

MONTH = datetime(DAY.year, DAY.month, 1, tzinfo=UTC)
COLUMNS = 'symbol, trade_id, price::text, quantity::text, "timestamp", is_buyer_maker'
_SIZE = "SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)"


def size(conn: psycopg.Connection[tuple[object, ...]], name: str) -> int:
    row = conn.execute(_SIZE, (name,)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def measure(admin: str, name: str, tape: Tape, days: int, runs: int) -> None:
    count = len(tape.ids)
    zipped = archive_zip_bytes(tape, micros=False)
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
