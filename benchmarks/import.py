"""Import benchmark: `binprice import` against a bare COPY of the same rows, in the same run.

    python benchmarks/import.py [--trades-per-day N] [--days D] [--runs R] [--fresh]
                                [--monthly] [--database-url URL]

Builds (once, cached under --cache) an archive of D daily files of N trades each from the test
archive's deterministic market (µs times, like 2025 files), serves it with
`binprice archive --directory` on loopback, and alternates, R times:

- bare: the same rows, already decoded to COPY text, in one `COPY trades FROM STDIN` into a
  fresh database at head (its indexes and rollup triggers included), timed to the commit;
- import: the real `binprice import` CLI into another fresh database, from spawn to exit
  (checksums, downloads, decoding and every commit included).

Each run measures bare, `import --loaders 2` (the default) and `import --loaders 1` (one
connection, like the bare COPY) into rows (`--compress-after off`), and the same two writing
the closed month compressed (`trade_blocks`, the default for a month closed 3 days ago: the
issue #18 target is >= 1.0x the bare COPY), in alternating order. Prints trades/s and MB/s
(CSV bytes), the ratio import / bare per run and the median, PostgreSQL CPU per 1,000
trades (only this server's processes), the importer's CPU and max RSS, and what the rollup
triggers cost (the bare COPY with them disabled). `--fresh` first measures, `--runs` times, the
bare COPY and the imports as blocks (2 and 1 loaders) and as rows, each on its own brand-new
embedded server (a new cluster creates its WAL files on first use): the issue #18 item 2
"import-blocks vs bare COPY" on a fresh server, beside the warm runs below. `--monthly`
imports one monthly file instead (D days in one zip: the constant-memory check).
Prints numbers; asserts nothing.
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
import zipfile
from datetime import date, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from ingest import _cpu_seconds, database

from binprice import embedded
from binprice.db.copy import COPY_TRADES
from binprice.history._archive import daily, monthly
from binprice.history._csv import CsvDecoder

SYMBOL = "BTCUSDT"
START = date(2025, 1, 1)  # µs files, the format of everything Binance publishes now
BLOCK = 1 << 20
#: The imports each run measures: (loaders, written as blocks).
IMPORTS = {
    "rows --loaders 2": (2, False),
    "rows --loaders 1": (1, False),
    "blocks --loaders 2": (2, True),
    "blocks --loaders 1": (1, True),
}


class ServerCpu:
    """CPU of one PostgreSQL server: its postmaster's children (backends, WAL writer,
    checkpointer...), sampled while they live; other servers on the machine are left out."""

    def __init__(self, url: str) -> None:
        with psycopg.connect(url) as conn:  # the backend's parent, read while it lives
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            self._postmaster = _parent(int(row[0]))
        self.start = {pid: _cpu_seconds(pid) for pid in self._children()}
        self.last = dict(self.start)

    def _children(self) -> list[int]:
        return [pid for pid in _pids() if _parent(pid) == self._postmaster]

    def sample(self) -> None:
        for pid in self._children():
            self.last[pid] = _cpu_seconds(pid)

    def total(self) -> float:
        return sum(v - self.start.get(pid, 0.0) for pid, v in self.last.items())


def _pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def build(cache: Path, per_day: int, days: int) -> Path:
    """The archive tree (daily files and the month's file), made once per size."""
    from binprice.testing.archive_files import ArchiveMarket, write_tree

    tree = cache / f"archive-{per_day}x{days}"
    if (tree / "done").exists():
        return tree
    began = time.perf_counter()
    market = ArchiveMarket.generate(
        [SYMBOL], START, START + timedelta(days=days), trades_per_day=per_day
    )
    write_tree(market, tree)
    (tree / "done").touch()
    print(f"built {per_day * days:,} trades in {time.perf_counter() - began:.0f} s: {tree}")
    return tree


def zips(tree: Path, days: int, use_monthly: bool) -> list[Path]:
    if use_monthly:
        return [tree / monthly(SYMBOL, START.year, START.month).path]
    return [tree / daily(SYMBOL, START + timedelta(days=i)).path for i in range(days)]


def copy_text(files: list[Path], out: Path) -> tuple[int, int]:
    """Decode the zips once, untimed, into the COPY text both sides store; (rows, CSV bytes)."""
    rows = size = 0
    with out.open("wb") as sink:
        for path in files:
            with zipfile.ZipFile(path) as archive, archive.open(archive.infolist()[0]) as csv:
                decoder = CsvDecoder(SYMBOL)
                while data := csv.read(BLOCK):
                    block = decoder.feed(data)
                    rows, size = rows + block.rows, size + block.size
                    sink.write(block.payload)
    return rows, size


def bare(url: str, text: Path, rows: int, *, triggers: bool = True) -> tuple[float, float]:
    """One COPY of the prepared rows; (seconds, PostgreSQL CPU seconds)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not triggers:
            conn.execute("ALTER TABLE trades DISABLE TRIGGER trades_minutes_insert")
        pg = ServerCpu(url)
        began = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(COPY_TRADES) as copy,
            text.open("rb") as f,
        ):
            while chunk := f.read(BLOCK):
                copy.write(chunk)
        seconds = time.perf_counter() - began
        pg.sample()
        stored = conn.execute("SELECT count(*) FROM trades").fetchone()
    assert stored == (rows,), stored
    return seconds, pg.total()


def serve(tree: Path) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "binprice", "archive", "--port", "0", "--directory", str(tree)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["url"]


def run_import(
    url: str,
    archive: str,
    days: int,
    work: Path,
    rows: int,
    *,
    loaders: int = 2,
    source: Path | None = None,
    blocks: bool = False,
) -> tuple[float, float, float, int]:
    """The CLI, from spawn to exit; (wall s, importer CPU s, PostgreSQL CPU s, max RSS KiB).
    `source`: the `src` directory of another checkout of binprice, run instead of this one."""
    env = dict(os.environ, BINPRICE_DATA_DIR=str(work / "import-data"))
    if source is not None:
        env["PYTHONPATH"] = str(source)  # ahead of the editable install's path entry
    cmd = [
        sys.executable,
        "-m",
        "binprice",
        "--database-url",
        url,
        "import",
        SYMBOL,
        "--start",
        START.isoformat(),
        "--end",
        (START + timedelta(days=days)).isoformat(),
        "--archive-url",
        archive,
        "--log-format",
        "json",
        "--loaders",
        str(loaders),
    ]
    if source is None:  # another checkout may predate the option (and the compressed form)
        cmd += ["--compress-after", "3d" if blocks else "off"]
    pg = ServerCpu(url)
    began = time.perf_counter()
    peak = 0
    with (work / "import.log").open("w+") as err:
        proc = subprocess.Popen(cmd, stderr=err, text=True, env=env)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            pg.sample()
            peak = max(peak, _peak_rss_kib(proc.pid))
            time.sleep(0.1)
        wall = time.perf_counter() - began
        err.seek(0)
        lines = [json.loads(x) for x in err.read().splitlines() if x.startswith("{")]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import failed: {lines[-3:]}")
    assert sum(int(x["rows"]) for x in lines if x["event"] == "loaded") == rows
    return wall, usage.ru_utime + usage.ru_stime, pg.total(), peak


def _peak_rss_kib(pid: int) -> int:
    """The process's own peak RSS (VmHWM). Not wait4's ru_maxrss: Linux carries the peak of
    the memory image an exec replaced into it, i.e. this (large) benchmark process's."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fresh_server(work: Path, name: str) -> str:
    info = embedded.ensure_server(work / name)
    return database(info.url("postgres"), work)


def report_first_runs(
    work: Path,
    text: Path,
    rows: int,
    archive: str,
    *,
    days: int,
    runs: int,
    against: Path | None = None,
) -> None:
    """Import-blocks vs bare COPY on brand-new servers: each measurement on a new cluster
    (bare, then the import as blocks with 2 and 1 loaders, then as rows; with `against`, that
    checkout's import as blocks too), `runs` times."""
    kinds: dict[str, tuple[int, bool, Path | None]] = {
        "blocks --loaders 2": (2, True, None),
        "blocks --loaders 1": (1, True, None),
        "rows": (2, False, None),
    }
    if against is not None:  # its default for a month closed 3 days ago: blocks, 2 loaders
        kinds[f"blocks --loaders 2 of {against}"] = (2, True, against)
    ratios: dict[str, list[float]] = {kind: [] for kind in kinds}
    print("first run on a brand-new PostgreSQL server (each measurement its own):")
    for run in range(runs):
        name = f"fresh-bare-{run}"
        bare_s, _ = bare(fresh_server(work, name), text, rows)
        embedded.stop_server(work / name)
        cells = [f"bare COPY {rows / bare_s:,.0f}/s"]
        for number, (kind, (loaders, blocks, source)) in enumerate(kinds.items()):
            name = f"fresh-{number}-{run}"
            url = fresh_server(work, name)
            wall, *_ = run_import(
                url, archive, days, work, rows, loaders=loaders, blocks=blocks, source=source
            )
            embedded.stop_server(work / name)
            ratios[kind].append(bare_s / wall)
            cells.append(f"{kind} {rows / wall:,.0f}/s ({bare_s / wall:.2f}x)")
        print(f"  run {run + 1}: " + "; ".join(cells))
    for kind, found in ratios.items():
        shown = ", ".join(f"{r:.2f}" for r in found)
        median = statistics.median(found)
        print(f"  {kind} / bare COPY, brand-new servers: median {median:.2f} ({shown})")


def per_1000(seconds: float, rows: int) -> str:
    return f"{seconds / rows * 1e6:.2f} ms/1000"


def measure_runs(
    args: argparse.Namespace, work: Path, text: Path, size: tuple[int, float], archive: str
) -> None:
    """The alternating runs: bare COPY and each import, on fresh databases; their ratios."""
    rows, mb = size
    ratios: dict[str, list[float]] = {s: [] for s in IMPORTS}
    for run in range(args.runs):
        sides = ["bare", *IMPORTS]
        order = sides if run % 2 == 0 else sides[::-1]
        out = {}
        for side in order:
            url = database(args.database_url, work)
            if side == "bare":
                out[side] = bare(url, text, rows)
            else:
                loaders, blocks = IMPORTS[side]
                out[side] = run_import(
                    url, archive, args.days, work, rows, loaders=loaders, blocks=blocks
                )
        bare_s, bare_pg = out["bare"]
        bare_cpu = per_1000(bare_pg, rows)
        line = (
            f"run {run + 1}: bare COPY {rows / bare_s:,.0f} trades/s "
            f"{mb / bare_s:.1f} MB/s (PostgreSQL CPU {bare_cpu})"
        )
        for side in IMPORTS:
            wall, cpu, pg, rss = out[side]
            ratios[side].append(bare_s / wall)
            line += (
                f"; import {side} {rows / wall:,.0f} trades/s "
                f"{mb / wall:.1f} MB/s, ratio {bare_s / wall:.2f} (PostgreSQL CPU "
                f"{per_1000(pg, rows)}, importer CPU {per_1000(cpu, rows)}, max RSS "
                f"{rss / 1024:.0f} MB)"
            )
        print(line)
    for side in IMPORTS:
        runs = ", ".join(f"{r:.2f}" for r in ratios[side])
        print(
            f"median ratio import ({side}) / bare COPY, whole process: "
            f"{statistics.median(ratios[side]):.2f} (runs: {runs})"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="a server to create databases on (default: embedded)")
    p.add_argument("--trades-per-day", type=int, default=750_000)
    p.add_argument("--days", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--monthly", action="store_true", help="one monthly file (use --days 31)")
    p.add_argument("--fresh", action="store_true", help="also first runs on new servers")
    p.add_argument(
        "--against", type=Path, help="with --fresh: another checkout's src/, imported too"
    )
    p.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "binprice-import-bench"
    )
    args = p.parse_args()
    tree = build(args.cache, args.trades_per_day, args.days)
    files = zips(tree, args.days, args.monthly)
    zip_mb = sum(f.stat().st_size for f in files) / 1e6
    server, archive = serve(tree)
    with tempfile.TemporaryDirectory(prefix="binprice-import-bench-") as tmp:
        work = Path(tmp)
        try:
            text = work / "rows.copy"
            rows, size = copy_text(files, text)
            mb = size / 1e6
            print(
                f"{rows:,} trades in {len(files)} file(s): {zip_mb:.0f} MB zipped, {mb:.0f} MB CSV"
            )
            if args.fresh:
                report_first_runs(
                    work, text, rows, archive, days=args.days, runs=args.runs, against=args.against
                )
            measure_runs(args, work, text, (rows, mb), archive)
            plain, _ = bare(database(args.database_url, work), text, rows, triggers=False)
            with_triggers, _ = bare(database(args.database_url, work), text, rows)
            cost = with_triggers / plain - 1
            print(
                f"rollup triggers: bare COPY {rows / plain:,.0f}/s without them, "
                f"{rows / with_triggers:,.0f}/s with them (+{cost:.0%} time)"
            )
        finally:
            server.terminate()
            server.wait()
            if args.database_url is None:
                embedded.stop_server(work / "data")


if __name__ == "__main__":
    main()
