"""Breadth benchmark: `binprice ingest --all` on a market shaped like Binance Spot.

The test exchange (in this process) lists SYMBOLS real symbol names, a share of them not
TRADING; the others trade at heavy-tailed rates (a few busy, most rare) summing to RATE
trades/s, with bursts of BURST_FACTOR times every rate for BURST_SECONDS every BURST_EVERY
seconds. The ingestor is the real `binprice ingest --all --metrics-port` CLI in a subprocess,
on a fresh database of the embedded server (or --database-url). Numbers are printed, never
asserted:

    python benchmarks/breadth.py --minutes 30
    python benchmarks/breadth.py --symbols 300 --minutes 0.25   # a smoke run (the tests')

Reported: trades produced and stored and whether every one is stored exactly once (per symbol,
every id from its first stored one; the market is paused at the end and the ingestor stopped
once it has all), connections and reconnects, ingestor RSS (sampled every 10 s: start, max,
and the growth over the last two thirds of the run), ingestor CPU per 1,000 trades, trade time
→ commit lag p50/p99 (the ingestor's own 1 ms histogram), and one `/metrics` scrape's size and
time with every symbol's series.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import aiohttp
import psycopg

from binprice.testing.exchange import TestExchange
from binprice.testing.market import heavy_tailed_rates, statuses, symbols

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import database  # noqa: E402 - the sibling benchmark's fresh-database helper


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stored(url: str) -> dict[str, tuple[int, int, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, count(*), min(trade_id), max(trade_id) FROM trades GROUP BY symbol"
        ).fetchall()
    return {str(s): (int(n), int(lo), int(hi)) for s, n, lo, hi in rows}


def _exactly_once(ex: TestExchange, url: str, names: list[str]) -> tuple[bool, int, int, str]:
    """(complete, produced from each first stored id, stored, first problem)."""
    stored = _stored(url)
    produced_total = stored_total = 0
    problem = ""
    for name in names:
        ids = [t.trade_id for t in ex.produced(name)]
        count, low, high = stored.get(name, (0, 0, 0))
        if not count:
            if ids and not problem:
                problem = f"{name}: {len(ids)} produced, none stored"
            continue
        expected = [i for i in ids if i >= low]
        produced_total += len(expected)
        stored_total += count
        if (count, high) != (len(expected), expected[-1]) and not problem:
            problem = f"{name}: stored {count} ids {low}..{high}, produced {len(expected)}"
    unstored = sum(len(ex.produced(n)) for n in names if n not in stored)
    return not problem, produced_total + unstored, stored_total, problem


class Scrape:
    """One /metrics scrape: its size, how long it took, and the samples summed by name."""

    def __init__(self, body: bytes, took_ms: float) -> None:
        self.bytes = len(body)
        self.took_ms = took_ms
        self.totals: dict[str, float] = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name = line.split("{", 1)[0].split(" ", 1)[0]
                self.totals[name] = self.totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        self.series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))

    @classmethod
    async def take(cls, port: int) -> Scrape:
        async with aiohttp.ClientSession() as http:
            began = time.perf_counter()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.read()
            return cls(body, (time.perf_counter() - began) * 1000)


# A benchmark script: the scenario reads top to bottom, step by step.
async def run(args: argparse.Namespace, workdir: Path, log: IO[str]) -> None:  # noqa: PLR0915
    url = database(args.database_url, workdir)
    names = symbols(args.symbols)
    halted = statuses(names, not_trading=args.not_trading, seed=1)
    trading = [n for n in names if n not in halted]
    rates = heavy_tailed_rates(trading, args.rate)
    seconds = args.minutes * 60
    async with TestExchange(names, seed=9, rates=rates, statuses=halted) as ex:
        port = _free_port()
        env = dict(os.environ, BINPRICE_DATA_DIR=str(workdir))
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "binprice", "--database-url", url),
            *("ingest", "--all", "--ws-url", ex.ws_url, "--rest-url", ex.rest_url),
            *("--log-format", "json", "-q", "--metrics-port", str(port)),
            *("--batch-wait", args.batch_wait),
            stderr=log,
            env=env,
        )
        began = time.monotonic()
        samples: list[tuple[float, int]] = []
        bursts = 0
        #: (CPU s, stored) at a third of the run: the steady state is measured from there.
        mark: tuple[float, float] | None = None
        next_burst = began + args.burst_every
        while (now := time.monotonic()) - began < seconds:
            if proc.returncode is not None:
                raise SystemExit("ingest ended early:\n" + (workdir / "ingest.log").read_text())
            samples.append((now - began, _rss_kib(proc.pid)))
            if now >= next_burst:
                ex.speed = args.burst_factor
                bursts += 1
                await asyncio.sleep(args.burst_seconds)
                ex.speed = 1.0
                next_burst += args.burst_every
            elif mark is None and now - began > seconds / 3:
                third = await Scrape.take(port)
                mark = (_cpu_seconds(proc.pid), third.totals["binprice_trades_stored_total"])
            else:
                await asyncio.sleep(min(10.0, max(0.5, seconds / 20)))
        cpu_streaming = _cpu_seconds(proc.pid)
        scrape = await Scrape.take(port)
        rss_end = _rss_kib(proc.pid)
        ex.paused.update(names)
        settle = time.monotonic()
        while not (done := _exactly_once(ex, url, trading))[0]:
            if time.monotonic() - settle > args.settle_seconds:
                break
            await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    log.seek(0)
    lines = [json.loads(x) for x in log.read().splitlines() if x.startswith("{")]
    final = next(x for x in lines if x["event"] == "final")
    complete, produced, stored, problem = done
    elapsed = samples[-1][0] if samples else seconds
    tail = [kib for t, kib in samples if t >= elapsed / 3]
    print(
        f"breadth: {len(names)} symbols listed ({len(halted)} not TRADING), {seconds / 60:g} "
        f"min, base {args.rate:g} trades/s heavy-tailed, {bursts} bursts of "
        f"{args.burst_factor:g}x for {args.burst_seconds:g} s every {args.burst_every:g} s, "
        f"--batch-wait {args.batch_wait}"
    )
    carried = scrape.totals["binprice_symbols"]
    wanted = scrape.totals["binprice_connections_wanted"]
    print(f"  carried {carried:.0f} symbols on {wanted:.0f} connections")
    print(
        f"  produced {produced:,} (avg {produced / elapsed:,.0f}/s), stored {stored:,}: "
        + ("exactly once" if complete else f"INCOMPLETE ({problem})")
    )
    print(
        f"  connections opened {scrape.totals['binprice_connections_opened_total']:.0f}, "
        f"reconnects {final['reconnects']}, "
        f"gaps {final['gaps']} (backfilled {final['backfilled']:,}), "
        f"duplicates {final['duplicates']:,}"
    )
    print(
        f"  ingestor RSS: start {samples[0][1] / 1024:.0f} MB, max "
        f"{max(k for _, k in samples) / 1024:.0f} MB, end {rss_end / 1024:.0f} MB; last two "
        f"thirds {min(tail) / 1024:.0f}..{max(tail) / 1024:.0f} MB (median "
        f"{statistics.median(tail) / 1024:.0f} MB, growth {(tail[-1] - tail[0]) / 1024:+.0f} MB)"
    )
    print(
        f"  ingestor CPU {cpu_streaming:.1f} s in all (start-up included) = "
        f"{cpu_streaming / max(stored, 1) * 1e6:.1f} ms per 1,000 trades"
    )
    if mark is not None:
        cpu = cpu_streaming - mark[0]
        trades = scrape.totals["binprice_trades_stored_total"] - mark[1]
        span = elapsed * 2 / 3
        print(
            f"  steady (last two thirds): {cpu:.1f} s CPU for {trades:,.0f} trades = "
            f"{cpu / max(trades, 1) * 1e6:.1f} ms per 1,000 trades ({cpu / span * 100:.0f}% "
            "of one core)"
        )
    print(
        f"  lag trade time -> commit: p50 {final['latency_p50_ms']:.0f} ms, "
        f"p99 {final['latency_p99_ms']:.0f} ms, max {final['latency_max_ms']} ms"
    )
    print(
        f"  /metrics: {scrape.series:,} series, {scrape.bytes / 1024:.0f} KiB, "
        f"scraped in {scrape.took_ms:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=1400)
    parser.add_argument("--not-trading", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=1000.0, help="trades/s in all, base")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--burst-factor", type=float, default=20.0)
    parser.add_argument("--burst-seconds", type=float, default=3.0)
    parser.add_argument("--burst-every", type=float, default=120.0)
    parser.add_argument("--settle-seconds", type=float, default=120.0)
    parser.add_argument("--batch-wait", default="0s", help="ingest --batch-wait")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="binprice-breadth-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o711)  # as root, the server's own user must reach the cluster below
        try:
            with open(workdir / "ingest.log", "w+") as log:
                asyncio.run(run(args, workdir, log))
        finally:
            if args.database_url is None:
                from binprice import embedded

                embedded.stop_server(workdir / "data")


if __name__ == "__main__":
    main()
