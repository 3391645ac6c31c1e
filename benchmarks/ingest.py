"""Ingest benchmarks: throughput, latency and memory of `binprice ingest`, and a naive baseline.

Everything runs on this machine: the test exchange (a subprocess), the ingestor (the real
`binprice ingest` CLI, a subprocess) and PostgreSQL (the embedded server, or --database-url).
Numbers are printed, never asserted.

    python benchmarks/ingest.py throughput --trades 1000000 --runs 5
    python benchmarks/ingest.py latency --rate 5000 --seconds 60
    python benchmarks/ingest.py naive --seconds 20
    python benchmarks/ingest.py versus --trades 1000000 --runs 5

throughput: the exchange at full speed, 2 symbols, N trades; reports trades/s (stored / time
from the first to the last commit, from the ingestor's own summary, and stored / wall time of the
whole process), ingestor CPU per 1000 trades, max RSS, CPU of exchange and PostgreSQL, and
checks every id is stored exactly once (contiguous ids per symbol, count = N).
latency: the exchange paced at RATE trades/s in total for SECONDS; reports trade time T → row
committed p50/p99/max from the ingestor's histogram, and RSS.
naive: a one-INSERT-per-trade ingestor (what a tutorial would write) on the same exchange at full
speed for SECONDS; reports its trades/s, for the ratio.
versus (issue #18, "a lean live month"): `binprice ingest` against a bare WebSocket -> COPY path
into the seed design's table (`trades(symbol, trade_id, price numeric, quantity numeric,
timestamp timestamptz(3), is_buyer_maker)` with only the index `(timestamp DESC, symbol)`), each
on a brand-new embedded server (a new cluster per measurement, `track_commit_timestamp` on for
both), N trades from the same exchange at full speed over the same 2 symbols, order alternating,
RUNS times. The bare path reads the same frames, decodes them with binprice's own pure decoder
and COPY encoder, and, while it goes on reading, COPYs and commits what has accumulated, at most
10,000 trades at a time (ingest's batch limit). Both rates are measured alike, by the server:
trades committed after the first COMMIT / (last COMMIT - first COMMIT), from the rows' commit
timestamps (each client's own rate is printed beside it: ingest's summary also counts its
connecting and closing). Per side it prints PostgreSQL CPU per trade (the backends, exact even
for backends that have exited, and the whole server) and the CPU of the client and of the
exchange as a share of one core (near 100 %: that process sets the pace); per run the ratio and
the live month's bytes per trade (heap, each index, rollup) after the ingest; then medians.
`--baseline-src DIR` adds a third side to every run, `baseline`: the same ingest run from the
binprice package under DIR (e.g. `git archive <commit> src alembic | tar -x -C /tmp/base`, then
DIR=/tmp/base/src), on a fresh server of its own, so a change is measured against the code
before it in the same runs (its ratio to the bare path is printed beside ingest's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _server_pids(postmaster: int) -> list[int]:
    """The postmaster and its children (backends, walwriter, checkpointer…)."""
    pids = [postmaster]
    for pid in _postgres_pids():
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if parent == postmaster:
            pids.append(pid)
    return pids


def postmaster_pid(data_dir: Path) -> int:
    """The postmaster of the embedded server in `data_dir` (see `database`)."""
    return int((data_dir / "data" / "pgdata" / "postmaster.pid").read_text().split()[0])


class CpuSampler:
    """Tracks the CPU of postgres processes (backends come and go): every one on the machine,
    or those of one server, given its postmaster."""

    def __init__(self, postmaster: int | None = None) -> None:
        self.postmaster = postmaster
        self.start = {pid: _cpu_seconds(pid) for pid in self._pids()}
        self.last = dict(self.start)

    def _pids(self) -> list[int]:
        return _postgres_pids() if self.postmaster is None else _server_pids(self.postmaster)

    def sample(self) -> None:
        for pid in self._pids():
            self.last[pid] = _cpu_seconds(pid)

    def total(self) -> float:
        return sum(v - self.start.get(pid, 0.0) for pid, v in self.last.items())


#: The server's own processes, not backends (`postgres: <name>` in their command line).
AUX_PROCESSES = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "io worker",
    "walsummarizer",
)


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


class ServerCpu:
    """CPU seconds of one server, exact even for backends that come and go: a backend that has
    exited is in its postmaster's reaped-children time (cutime + cstime), one still running is
    read directly. `backend` leaves out the server's own processes (walwriter, checkpointer…)."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster
        self.start = self._read()

    def _read(self) -> tuple[float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        f = _stat_fields(self.postmaster)
        reaped = (int(f[13]) + int(f[14])) / tick
        own = (int(f[11]) + int(f[12])) / tick
        backends, aux = reaped, own
        for pid in _server_pids(self.postmaster)[1:]:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(name in cmd for name in AUX_PROCESSES):
                aux += _cpu_seconds(pid)
            else:
                backends += _cpu_seconds(pid)
        return backends, aux

    def _backends_alive(self) -> int:
        alive = 0
        for pid in _server_pids(self.postmaster)[1:]:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            alive += not any(name in cmd for name in AUX_PROCESSES)
        return alive

    def finish(self) -> tuple[float, float]:
        """(backend, server total) CPU seconds since start, once the client's backends are gone."""
        for _ in range(100):  # a backend exits just after its client disconnects
            if not self._backends_alive():
                break
            time.sleep(0.02)
        backends, aux = self._read()
        b = backends - self.start[0]
        return b, b + aux - self.start[1]


def commit_rate(url: str, table: str) -> float:
    """Trades per second between the run's first and last COMMIT, from the server's commit
    timestamps (`track_commit_timestamp`): the same clock and the same definition for any
    writer. The first transaction's rows are left out (they are the start of the interval)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT pg_xact_commit_timestamp(xmin) AS ts, count(*) FROM {table} "
            "GROUP BY xmin ORDER BY ts"
        ).fetchall()
    seconds = (rows[-1][0] - rows[0][0]).total_seconds()
    if not seconds:
        return float("nan")  # one commit: no interval to measure
    return (sum(n for _, n in rows) - rows[0][1]) / seconds


def database(url: str | None, workdir: Path) -> str:
    """A fresh, migrated database: a new one on the given server, else a throwaway embedded."""
    if url is None:
        from binprice import embedded

        info = embedded.ensure_server(workdir / "data")
        url = info.url("postgres")
    name = f"bench_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    scheme, _, rest = url.partition("://")
    auth_host, _, tail = rest.partition("/")
    query = tail.partition("?")[2]
    db_url = f"{scheme}://{auth_host}/{name}" + (f"?{query}" if query else "")
    from binprice.db import migrations

    migrations.upgrade(db_url)
    return db_url


def start_exchange(rate: str, max_trades: int | None) -> tuple[subprocess.Popen[str], str, str]:
    args = [sys.executable, "-m", "binprice", "exchange", "--port", "0", "--rate", rate]
    args += ["--symbols", ",".join(SYMBOLS)]
    if max_trades:
        args += ["--max-trades", str(max_trades)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    urls = json.loads(proc.stdout.readline())
    return proc, urls["ws_url"], urls["rest_url"]


def run_ingest(
    url: str, ws: str, rest: str, data_dir: Path, extra: list[str], *, postmaster: int | None = None
) -> tuple[dict[str, object], float, float, int, CpuSampler]:
    """Run `binprice ingest`; return its final summary, wall time, CPU s, max RSS KiB, PG CPU
    (of the server of `postmaster`, else of every postgres process)."""
    env = dict(os.environ, BINPRICE_DATA_DIR=str(data_dir))
    cmd = [
        sys.executable,
        "-m",
        "binprice",
        "--database-url",
        url,
        "ingest",
        *SYMBOLS,
        "--ws-url",
        ws,
        "--rest-url",
        rest,
        "--log-format",
        "json",
        "-q",
        *extra,
    ]
    sampler = CpuSampler(postmaster)
    started = time.perf_counter()
    err = open(data_dir / "ingest.log", "w+")  # noqa: SIM115 - read back below
    proc = subprocess.Popen(cmd, stderr=err, text=True, env=env)
    while True:
        pid, _, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        sampler.sample()
        time.sleep(0.2)
    proc.returncode = 0
    wall = time.perf_counter() - started
    err.seek(0)
    lines = err.read().splitlines()
    err.close()
    finals = [json.loads(x) for x in lines if x.startswith("{") and '"final"' in x]
    if not finals:
        raise SystemExit("ingest failed:\n" + "\n".join(lines[-20:]))
    final = finals[-1]
    cpu = usage.ru_utime + usage.ru_stime
    return final, wall, cpu, usage.ru_maxrss, sampler


def check_exactly_once(url: str, expected: int) -> str:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, count(*), count(DISTINCT trade_id), min(trade_id), max(trade_id) "
            "FROM trades GROUP BY symbol ORDER BY symbol"
        ).fetchall()
    total = sum(r[1] for r in rows)
    ok = all(r[1] == r[2] == r[4] - r[3] + 1 for r in rows) and total == expected
    detail = ", ".join(f"{r[0]} {r[1]:,} ids {r[3]}..{r[4]}" for r in rows)
    return f"{'OK' if ok else 'FAILED'}: {total:,} stored ({detail})"


def throughput(args: argparse.Namespace, workdir: Path, *, trades: int | None = None) -> None:
    url = database(args.database_url, workdir)
    per_symbol = (trades or args.trades) // len(SYMBOLS)
    ex, ws, rest = start_exchange("max", per_symbol)
    ex_cpu0 = _cpu_seconds(ex.pid)
    try:
        final, wall, cpu, rss, pg = run_ingest(
            url, ws, rest, workdir, ["--max-trades", str(per_symbol * len(SYMBOLS))]
        )
        ex_cpu = _cpu_seconds(ex.pid) - ex_cpu0
    finally:
        ex.terminate()
        ex.wait()
    stored = int(final["stored"])  # type: ignore[call-overload]
    elapsed = float(final["elapsed"])  # type: ignore[arg-type]
    if trades is not None:
        print(f"warm-up: {stored:,} trades at {stored / elapsed:,.0f}/s (not reported)")
        return
    print(f"throughput: {stored:,} trades, 2 symbols, exchange at full speed")
    print(f"  sustained (ingestor's run time {elapsed:.2f} s): {stored / elapsed:,.0f} trades/s")
    print(f"  whole process incl. start-up and migration ({wall:.2f} s): {stored / wall:,.0f}/s")
    print(f"  ingestor CPU: {cpu:.2f} s = {cpu / stored * 1e6:.2f} ms per 1,000 trades")
    print(f"  ingestor max RSS: {rss / 1024:.0f} MB")
    print(f"  exchange CPU: {ex_cpu:.2f} s, PostgreSQL CPU: {pg.total():.2f} s")
    print(f"  spooled under backlog: {final['spilled']:,}; batches: {final['batches']:,}")
    print(f"  exactly once: {check_exactly_once(url, stored)}")


def latency(args: argparse.Namespace, workdir: Path) -> None:
    url = database(args.database_url, workdir)
    ex, ws, rest = start_exchange(str(args.rate / len(SYMBOLS)), None)
    try:
        final, _wall, cpu, rss, _ = run_ingest(
            url, ws, rest, workdir, ["--duration", f"{args.seconds:g}s"]
        )
    finally:
        ex.terminate()
        ex.wait()
    stored = int(final["stored"])  # type: ignore[call-overload]
    print(f"latency: {args.rate:,} trades/s for {args.seconds} s, {stored:,} trades stored")
    print(
        f"  trade time T -> committed: p50 {final['latency_p50_ms']} ms, "
        f"p99 {final['latency_p99_ms']} ms, max {final['latency_max_ms']} ms"
    )
    print(f"  ingestor CPU: {cpu:.2f} s = {cpu / max(stored, 1) * 1e6:.2f} ms per 1,000 trades")
    print(f"  ingestor max RSS: {rss / 1024:.0f} MB")
    print(f"  exactly once: {check_exactly_once(url, stored)}")


NAIVE = r"""
import asyncio, json, sys, time
from decimal import Decimal
from datetime import datetime, timezone
import aiohttp, psycopg

async def main(ws_url, db_url, seconds):
    # What a tutorial writes: json.loads, one INSERT and one commit per trade.
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    n = 0
    dropped = True
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url) as ws:
        start = time.monotonic()
        end = start + seconds
        async for msg in ws:
            d = json.loads(msg.data)["data"]
            await conn.execute(
                "INSERT INTO trades (symbol, trade_id, price, quantity, timestamp, is_buyer_maker)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (d["s"], d["t"], Decimal(d["p"]), Decimal(d["q"]),
                 datetime.fromtimestamp(d["T"] / 1000, timezone.utc), d["m"]))
            n += 1
            if time.monotonic() > end:
                dropped = False
                break
    print(json.dumps({"trades": n, "seconds": time.monotonic() - start, "dropped": dropped}))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


def naive(args: argparse.Namespace, workdir: Path) -> None:
    url = database(args.database_url, workdir)
    ex, ws, _ = start_exchange("max", None)
    try:
        stream = ws + "/stream?streams=" + "/".join(s.lower() + "@trade" for s in SYMBOLS)
        out = subprocess.run(
            [sys.executable, "-c", NAIVE, stream, url, str(args.seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        ex.terminate()
        ex.wait()
    result = json.loads(out.stdout)
    n, seconds = result["trades"], result["seconds"]
    rate = n / seconds
    print(f"naive one-INSERT-per-trade ingestor: {n:,} trades in {seconds:.1f} s = {rate:,.0f}/s")
    if result["dropped"]:
        # It reads too slowly to answer the exchange's pings in time, the failure Binance's
        # own keepalive produces for slow consumers.
        print(f"  the exchange dropped its connection after {seconds:.0f} s (pings answered late)")


SEED_TABLE = """
CREATE TABLE trades_seed (
    symbol text NOT NULL, trade_id bigint NOT NULL, price numeric NOT NULL,
    quantity numeric NOT NULL, "timestamp" timestamptz(3) NOT NULL, is_buyer_maker boolean NOT NULL
);
CREATE INDEX ix_trades_seed_timestamp_symbol ON trades_seed ("timestamp" DESC, symbol);
"""

BARE = r"""
import asyncio, json, sys, time
import aiohttp, psycopg
from binprice.db.copy import CopyEncoder
from binprice.exchange.protocol import WireTrade, decode_frame

BATCH = 10_000

async def main(ws_url, db_url, total):
    # The least a capture can do, with reading and writing overlapped as ingest does them:
    # a reader decodes frames into a list; a writer COPYs and commits what has accumulated
    # (at most BATCH trades) while the reader goes on.
    conn = await psycopg.AsyncConnection.connect(db_url)
    encoder = CopyEncoder()
    pending, ready, done = [], asyncio.Event(), asyncio.Event()
    first = None

    async def read():
        nonlocal first
        received = 0
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url, max_msg_size=0) as ws:
            async for msg in ws:
                trade = decode_frame(msg.data)
                if not isinstance(trade, WireTrade):
                    continue
                if first is None:
                    first = time.perf_counter()
                pending.append(trade)
                ready.set()
                received += 1
                if received >= total:
                    break
        done.set()
        ready.set()

    async def write():
        stored = 0
        while stored < total:
            await ready.wait()
            ready.clear()
            while pending:
                batch = pending[:BATCH]
                del pending[:BATCH]
                async with conn.cursor() as cur, cur.copy(
                    "COPY trades_seed (symbol, trade_id, price, quantity, timestamp, "
                    "is_buyer_maker) FROM STDIN"
                ) as copy:
                    await copy.write(encoder.encode(batch))
                await conn.commit()
                stored += len(batch)
            if done.is_set() and not pending:
                break
        return stored

    async with asyncio.TaskGroup() as group:
        group.create_task(read())
        writer = group.create_task(write())
    print(json.dumps({"stored": writer.result(), "elapsed": time.perf_counter() - first}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""

#: The live month's bytes: its partitions of `trades` (heap, indexes, TOAST) and the rollup.
LIVE_BYTES_SQL = """
SELECT (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
        WHERE inhparent = 'trades'::regclass),
       (SELECT sum(pg_relation_size(inhrelid)) FROM pg_inherits
        WHERE inhparent = 'trades'::regclass),
       pg_total_relation_size('trade_minutes')
"""
#: Each index of the live month's partitions, by the parent's index name.
INDEX_BYTES_SQL = """
SELECT parent.relname, sum(pg_relation_size(child.oid))
FROM pg_inherits AS i
JOIN pg_class AS child ON child.oid = i.inhrelid
JOIN pg_class AS parent ON parent.oid = i.inhparent
WHERE parent.relkind = 'I' AND parent.relname IN (
    SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'trades'::regclass)
GROUP BY parent.relname ORDER BY parent.relname
"""


@dataclass
class Side:
    """One measurement of one path."""

    #: Trades/s between first and last COMMIT (server commit timestamps), and the client's own.
    rate: float
    client_rate: float
    #: PostgreSQL CPU µs per trade: the backends, and the whole server (+ walwriter, …).
    backend_us: float
    server_us: float
    #: CPU of the client and of the test exchange, as a share of one core over the client's run.
    client_load: float
    exchange_load: float
    #: The client's CPU µs per trade (ingest's includes its start-up: imports, migration check).
    client_us: float
    sizes: str = ""

    def line(self) -> str:
        return (
            f"rate {self.rate:8,.0f}/s (client {self.client_rate:8,.0f}/s); PG "
            f"{self.backend_us:.2f} / {self.server_us:.2f} us; load client "
            f"{self.client_load:.0%}, exchange {self.exchange_load:.0%}; client CPU "
            f"{self.client_us:.2f} us/trade"
        )


FIELDS = (
    "rate",
    "client_rate",
    "backend_us",
    "server_us",
    "client_load",
    "exchange_load",
    "client_us",
)


def _run_client(
    cmd: list[str], env: dict[str, str] | None, stdout: int | None, stderr: object
) -> tuple[subprocess.Popen[str], float, float]:
    """Run the client to its end: the process, its wall seconds and CPU seconds."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True, env=env)  # type: ignore[arg-type]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc, time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def bare(url: str, trades: int, postmaster: int) -> Side:
    """The bare WebSocket -> COPY path into the seed table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_TABLE)
    per_symbol = trades // len(SYMBOLS)
    ex, ws, _ = start_exchange("max", per_symbol)
    try:
        stream = ws + "/stream?streams=" + "/".join(s.lower() + "@trade" for s in SYMBOLS)
        server = ServerCpu(postmaster)
        ex_cpu0 = _cpu_seconds(ex.pid)
        proc, wall, cpu = _run_client(
            [sys.executable, "-c", BARE, stream, url, str(per_symbol * len(SYMBOLS))],
            None,
            subprocess.PIPE,
            None,
        )
        ex_cpu = _cpu_seconds(ex.pid) - ex_cpu0
        backend, total = server.finish()
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        ex.terminate()
        ex.wait()
    result = json.loads(out)
    stored = int(result["stored"])
    return Side(
        rate=commit_rate(url, "trades_seed"),
        client_rate=stored / float(result["elapsed"]),
        backend_us=backend / stored * 1e6,
        server_us=total / stored * 1e6,
        client_load=cpu / wall,
        exchange_load=ex_cpu / wall,
        client_us=cpu / stored * 1e6,
    )


def ingest_side(
    url: str, workdir: Path, trades: int, postmaster: int, src: str | None = None
) -> Side:
    """`binprice ingest` of `trades` at full speed, and the live month's bytes afterwards;
    `src`: run the binprice package of that source tree instead of this checkout's."""
    per_symbol = trades // len(SYMBOLS)
    ex, ws, rest = start_exchange("max", per_symbol)
    env = dict(os.environ, BINPRICE_DATA_DIR=str(workdir))
    if src is not None:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "binprice", "--database-url", url, "ingest", *SYMBOLS]
    cmd += ["--ws-url", ws, "--rest-url", rest, "--log-format", "json", "-q"]
    cmd += ["--max-trades", str(per_symbol * len(SYMBOLS))]
    try:
        server = ServerCpu(postmaster)
        ex_cpu0 = _cpu_seconds(ex.pid)
        with open(workdir / "ingest.log", "w+") as err:
            _, wall, cpu = _run_client(cmd, env, None, err)
            err.seek(0)
            lines = err.read().splitlines()
        ex_cpu = _cpu_seconds(ex.pid) - ex_cpu0
        backend, total = server.finish()
    finally:
        ex.terminate()
        ex.wait()
    finals = [json.loads(x) for x in lines if x.startswith("{") and '"final"' in x]
    if not finals:
        raise SystemExit("ingest failed:\n" + "\n".join(lines[-20:]))
    stored = int(finals[-1]["stored"])
    rate = commit_rate(url, "trades")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE trades")
        conn.execute("VACUUM ANALYZE trade_minutes")
        size, heap, rollup = conn.execute(LIVE_BYTES_SQL).fetchone()  # type: ignore[misc]
        indexes = conn.execute(INDEX_BYTES_SQL).fetchall()
    each = ", ".join(f"{name} {b / stored:.1f}" for name, b in indexes)
    return Side(
        rate=rate,
        client_rate=stored / float(finals[-1]["elapsed"]),
        backend_us=backend / stored * 1e6,
        server_us=total / stored * 1e6,
        client_load=cpu / wall,
        exchange_load=ex_cpu / wall,
        client_us=cpu / stored * 1e6,
        sizes=(
            f"live month {size / stored:.1f} bytes/trade (heap {heap / stored:.1f}, "
            f"indexes {(size - heap) / stored:.1f}: {each}) + rollup {rollup / stored:.2f}; "
            f"{finals[-1]['batches']} batches, {finals[-1]['spilled']:,} trades spooled"
        ),
    )


def fresh_server(side_dir: Path) -> tuple[str, int]:
    """A brand-new embedded cluster with a migrated database, keeping commit timestamps (both
    paths pay for them alike): its URL and postmaster."""
    from binprice import embedded

    url = database(None, side_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
    embedded.stop_server(side_dir / "data")
    embedded.ensure_server(side_dir / "data")
    return url, postmaster_pid(side_dir)


def _median(sides: list[Side], name: str) -> float:
    return statistics.median(getattr(side, name) for side in sides)


def versus(args: argparse.Namespace, workdir: Path) -> None:
    """`binprice ingest` against the bare path, each on a brand-new server, alternating."""
    from binprice import embedded

    print(
        f"ingest vs bare WebSocket -> COPY into the seed table, {args.trades:,} trades, "
        f"2 symbols, exchange at full speed, a new server per measurement, {args.runs} runs.\n"
        "rate: trades/s between first and last COMMIT (server commit timestamps); client: "
        "the client's own rate; PG: PostgreSQL CPU us/trade, backends / whole server; "
        "load: CPU of client / exchange as a share of one core",
        flush=True,
    )
    ratios: list[float] = []
    names = ("bare", "ingest") + (("baseline",) if args.baseline_src else ())
    baseline_ratios: list[float] = []
    sides: dict[str, list[Side]] = {name: [] for name in names}
    for run in range(args.runs):
        found: dict[str, Side] = {}
        for name in names if run % 2 == 0 else names[::-1]:
            side_dir = workdir / f"{name}-{run}"
            side_dir.mkdir()
            side_dir.chmod(0o711)
            try:
                url, postmaster = fresh_server(side_dir)
                if name == "bare":
                    found[name] = bare(url, args.trades, postmaster)
                else:
                    src = args.baseline_src if name == "baseline" else None
                    found[name] = ingest_side(url, side_dir, args.trades, postmaster, src)
            finally:
                embedded.stop_server(side_dir / "data")
            sides[name].append(found[name])
        ratios.append(found["ingest"].rate / found["bare"].rate)
        also = ""
        if "baseline" in found:
            baseline_ratios.append(found["baseline"].rate / found["bare"].rate)
            also = f" (baseline {baseline_ratios[-1]:.2f})"
        print(f"  run {run + 1}: ratio {ratios[-1]:.2f}{also}")
        for name in names:
            print(f"    {name:8} {found[name].line()}", flush=True)
        for name in names[1:]:
            print(f"    {name:8} {found[name].sizes}", flush=True)
    also = f" (baseline {statistics.median(baseline_ratios):.2f})" if baseline_ratios else ""
    print(f"  median ratio {statistics.median(ratios):.2f}{also}")
    for name in names:
        median = Side(*(_median(sides[name], f) for f in FIELDS))
        print(f"    {name:8} {median.line()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["throughput", "latency", "naive", "versus", "all"])
    p.add_argument("--database-url", help="default: a throwaway embedded server")
    p.add_argument("--trades", type=int, default=1_000_000)
    p.add_argument("--rate", type=int, default=5000, help="latency: total trades/s")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument(
        "--baseline-src",
        help="versus: also run the ingest of the binprice package under this src directory "
        "(e.g. an extracted earlier commit), in the same runs, as 'baseline'",
    )
    p.add_argument("--warmup", type=int, default=1_000_000, help="trades, 0 for none")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="binprice-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o711)  # as root, the server's own user must reach the cluster below
        if args.mode == "versus":
            versus(args, workdir)
            return
        try:
            modes = ["throughput", "latency", "naive"] if args.mode == "all" else [args.mode]
            if args.warmup and "throughput" in modes:
                # A new cluster creates (zero-fills) its WAL segments on first use; a server
                # that has run for a while recycles them. Measure the steady state.
                throughput(args, workdir, trades=args.warmup)
            for mode in modes:
                for _ in range(args.runs):
                    {"throughput": throughput, "latency": latency, "naive": naive}[mode](
                        args, workdir
                    )
        finally:
            if args.database_url is None:
                from binprice import embedded

                embedded.stop_server(workdir / "data")


if __name__ == "__main__":
    main()
