"""Aggregate trades: `import --kind aggTrades` against a bare COPY of the same rows, and the
questions answered from `agg_trades`, in the same run.

    python benchmarks/aggtrades.py [--aggregates N] [--market spot|usdm|coinm] [--runs R]
                                   [--database-url URL]

Builds one daily aggTrades zip of N aggregates (the test archive's deterministic market and
CSV dialect, a `.CHECKSUM` beside it) and, R times, alternately:

- bare: the same rows, decoded to COPY text beforehand, in one `COPY agg_trades FROM STDIN`
  into a fresh database at head, timed to the commit;
- import: `import_history(ImportOptions(files=(zip,), kind="aggTrades"))` into another fresh
  database (checksum, decoding, chunks with their `imports` rows, the timeline pass).

Then, on the imported database, the median time of each question with `kind="aggTrades"`
(latest, at, a range of the whole day and of one hour, 1m and 1h candles of the day) over
`--calls` calls through one Store. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from ingest import database

import binprice
from binprice.db.aggimport import agg_copy_columns
from binprice.history import ImportOptions, import_history
from binprice.history._archive import daily
from binprice.history._csv import CsvDecoder
from binprice.kinds import TradeKind
from binprice.markets import Market, parse_market
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.archive_kinds import ArchivePath, file_lines

#: Near the test market's anchor day, so that a large day keeps its ids above 1.
DAY = date(2026, 5, 20)


def build_zip(workdir: Path, symbol: str, market: Market, aggregates: int) -> tuple[Path, bytes]:
    """The day's aggTrades zip (with its CHECKSUM) and its CSV."""
    series = ArchiveMarket.generate(
        [symbol], DAY, DAY + timedelta(days=1), trades_per_day=aggregates, market=market
    )
    key = ArchivePath(market, "aggTrades", daily(symbol, DAY))
    csv = "".join(file_lines(series, key)).encode()
    path = workdir / key.name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(key.name.replace(".zip", ".csv"), csv)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path, csv


def bare(url: str, payload: bytes, market: Market) -> float:
    statement = f"COPY agg_trades ({agg_copy_columns(market)}) FROM STDIN"
    with psycopg.connect(url) as conn:
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.write(payload)
        conn.commit()
        return time.perf_counter() - began


def imported(url: str, path: Path, market: Market, spool: Path) -> float:
    options = ImportOptions(files=(path,), market=market, kind="aggTrades", spool_dir=spool)
    began = time.perf_counter()
    summary = asyncio.run(import_history(options, url))
    seconds = time.perf_counter() - began
    assert summary.ok, summary
    return seconds


def questions(url: str, symbol: str, market: Market, calls: int) -> dict[str, float]:
    start = datetime.combine(DAY, datetime.min.time(), UTC)
    end, noon = start + timedelta(days=1), start + timedelta(hours=12, seconds=7)
    asks = {
        "latest": lambda s: s.latest([symbol], market=market, kind="aggTrades"),
        "at": lambda s: s.at(noon, [symbol], market=market, kind="aggTrades"),
        "range 1 day": lambda s: s.range(start, end, [symbol], market=market, kind="aggTrades"),
        "range 1 hour": lambda s: s.range(
            noon, noon + timedelta(hours=1), [symbol], market=market, kind="aggTrades"
        ),
        "candles 1m, 1 day": lambda s: s.candles(
            [symbol], "1m", start, end, market=market, kind="aggTrades"
        ),
        "candles 1h, 1 day": lambda s: s.candles(
            [symbol], "1h", start, end, market=market, kind="aggTrades"
        ),
    }
    medians = {}
    with binprice.connect(url) as store:
        for name, ask in asks.items():
            ask(store)  # warm: the connection, the plan, the pages
            times = []
            for _ in range(calls):
                began = time.perf_counter()
                ask(store)
                times.append(time.perf_counter() - began)
            medians[name] = statistics.median(times)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aggregates", type=int, default=300_000)
    parser.add_argument("--market", default="usdm")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    market = parse_market(args.market)
    symbol = "BTCUSD_PERP" if market is Market.COINM else "BTCUSDT"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path, csv = build_zip(workdir, symbol, market, args.aggregates)
        decoder = CsvDecoder(symbol, market=market, kind=TradeKind.AGG_TRADES)
        block = decoder.feed(csv)
        payload, rows = block.payload, block.rows
        print(f"{rows:,} aggregates of {symbol} ({market.value}), {len(csv) / 1e6:.1f} MB CSV")
        ratios, bares, imports = [], [], []
        for run in range(args.runs):
            url = database(args.database_url, workdir)
            b = bare(url, payload, market)
            url = database(args.database_url, workdir)
            i = imported(url, path, market, workdir / f"spool{run}")
            bares.append(b)
            imports.append(i)
            ratios.append(b / i)
            print(
                f"run {run + 1}: bare COPY {rows / b:,.0f}/s, import {rows / i:,.0f}/s, "
                f"import/bare {b / i:.2f}x"
            )
        print(
            f"median: bare COPY {rows / statistics.median(bares):,.0f}/s, "
            f"import {rows / statistics.median(imports):,.0f}/s, "
            f"import/bare {statistics.median(ratios):.2f}x"
        )
        for name, seconds in questions(url, symbol, market, args.calls).items():
            print(f"{name:>18}: {seconds * 1000:8.2f} ms (median of {args.calls})")


if __name__ == "__main__":
    main()
