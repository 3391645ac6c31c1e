"""`binprice import` as users run it: a real process against the real test archive server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from binprice.testing.archive import ArchiveFaults, ArchiveServer
from binprice.testing.archive_files import ArchiveMarket, day_ms, write_csv_zip, write_tree
from tests.test_import import SYMBOL, expected_text, imports, market_trades, stored_text

START, END = date(2024, 3, 1), date(2024, 3, 4)
#: The three days of `_market()`.
RANGE = (SYMBOL, "--start", "2024-03-01", "--end", "2024-03-04")


async def _binprice(url: str, *args: str, data_dir: Path) -> tuple[int, str, str]:
    env = dict(os.environ, BINPRICE_DATA_DIR=str(data_dir))
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "binprice", "--database-url", url, "import", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _market(trades_per_day: int = 20) -> ArchiveMarket:
    return ArchiveMarket.generate([SYMBOL], START, END, trades_per_day=trades_per_day)


async def test_plain_output_is_one_line_per_file_then_a_summary(
    database_url: str, tmp_path: Path
) -> None:
    """Off a terminal: a line per file (name, trades, ids, speed), a summary, exit 0."""
    market = _market()
    async with ArchiveServer(market) as archive:
        code, out, err = await _binprice(
            database_url, *RANGE, "--archive-url", archive.url, data_dir=tmp_path
        )
    assert code == 0, err
    loaded = [line for line in err.splitlines() if "trades (" in line]
    assert len(loaded) == 3
    assert f"{SYMBOL}-trades-2024-03-01.zip: 20 trades (20 new), ids " in loaded[0]
    assert err.splitlines()[-2].startswith(f"{SYMBOL}: 3 loaded; 60 trades loaded; last trade id")
    assert err.splitlines()[-1].startswith("import done in ")
    assert out == ""
    assert stored_text(database_url) == expected_text(market_trades(market))


async def test_json_lines_and_a_refused_file_exit_non_zero_with_a_summary(
    database_url: str, tmp_path: Path
) -> None:
    """--log-format json: one object per file; a checksum mismatch is named, exit 1."""
    bad = f"{SYMBOL}-trades-2024-03-02.zip"
    async with ArchiveServer(_market(), ArchiveFaults(wrong_checksum={bad})) as archive:
        code, _, err = await _binprice(
            database_url,
            *RANGE,
            "--archive-url",
            archive.url,
            "--log-format",
            "json",
            data_dir=tmp_path,
        )
    assert code == 1
    lines = err.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    by_event: dict[str, list[dict[str, object]]] = {}
    for r in records:
        by_event.setdefault(str(r["event"]), []).append(r)
    assert [r["file"] for r in by_event["loaded"]] == [
        f"{SYMBOL}-trades-2024-03-01.zip",
        f"{SYMBOL}-trades-2024-03-03.zip",
    ]
    assert by_event["loaded"][0]["rows"] == 20
    [refused] = by_event["refused"]
    assert refused["file"] == bad and "checksum mismatch" in str(refused["message"])
    [final] = by_event["final"]
    assert final["ok"] is False and final["failed"][0]["file"] == bad  # type: ignore[index]
    assert lines[-1] == (
        "error: 1 file not imported (listed above); the others are stored, and a re-run "
        "retries only what is missing"
    )


async def test_from_dir_imports_hand_placed_files_flat_or_in_the_archive_layout(
    database_url: str, tmp_path: Path
) -> None:
    """`--from DIR` (no symbols or dates needed) and an explicit zip path; monthly files are
    preferred over daily ones of the same month."""
    market = ArchiveMarket.generate([SYMBOL], date(2024, 2, 1), date(2024, 3, 3), trades_per_day=4)
    tree, flat = tmp_path / "tree", tmp_path / "flat"
    write_tree(market, tree)
    march = [p for p in write_tree(market, flat, flat=True) if "2024-03-0" in p.name]
    for path in march:  # only the March days kept in the flat folder
        path.rename(tmp_path / path.name)
        path.with_name(path.name + ".CHECKSUM").rename(tmp_path / (path.name + ".CHECKSUM"))
    code, _, err = await _binprice(
        database_url,
        "--from",
        str(tree / "data/spot/monthly"),
        str(tmp_path / march[0].name),
        str(tmp_path / march[1].name),
        "--log-format",
        "json",
        data_dir=tmp_path / "data",
    )
    assert code == 0, err
    records = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    loaded = [r["file"] for r in records if r["event"] == "loaded"]
    assert loaded == [f"{SYMBOL}-trades-2024-02.zip", march[0].name, march[1].name]
    assert stored_text(database_url) == expected_text(market_trades(market))


async def test_a_hand_placed_zip_without_its_checksum_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    """No CHECKSUM beside it and no archive to ask: refused, nothing stored."""
    market = _market(trades_per_day=3)
    [path, *_] = write_tree(market, tmp_path / "zips", flat=True)
    path.with_name(path.name + ".CHECKSUM").unlink()
    code, _, err = await _binprice(
        database_url,
        str(path),
        "--archive-url",
        "http://127.0.0.1:9",
        data_dir=tmp_path,
    )
    assert code == 1
    assert f"{path.name}: refused: no {path.name}.CHECKSUM beside it, and the archive is " in err
    assert stored_text(database_url) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((SYMBOL,), "error: give --start DATE: the first UTC day to import"),
        ((SYMBOL, "--start", "2024-03-02", "--end", "2024-03-01"), "must be after --start"),
        ((SYMBOL, "--start", "soon"), "error: --start: invalid timestamp 'soon'"),
        (("--start", "2024-01-01"), "name the symbols to import"),
    ],
    ids=["no-start", "end-before-start", "bad-date", "no-symbols"],
)
async def test_bad_input_is_one_line_and_exit_2(
    database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = await _binprice(database_url, *args, data_dir=tmp_path)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


async def _hold_when_partial(watcher: psycopg.Connection[Any], name: str) -> int:
    """Wait until the file's imports row is `partial`, then keep it locked (the importer's next
    chunk blocks on it, mid-file); return its last id."""
    async with asyncio.timeout(60):
        while True:
            try:
                row = watcher.execute(
                    "SELECT state, last_id FROM imports WHERE name = %s FOR UPDATE NOWAIT",
                    (name,),
                ).fetchone()
            except psycopg.errors.LockNotAvailable:
                row = None
            if row is not None and row[0] == "partial":
                return int(row[1])
            assert row is None or row[0] != "done", "the file finished before the signal"
            watcher.rollback()
            await asyncio.sleep(0.005)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
async def test_an_import_stopped_mid_file_resumes_where_its_last_commit_ended(
    database_url: str, tmp_path: Path, signum: int
) -> None:
    """SIGKILL or Ctrl+C while a file is half committed: the imports row says `partial` and
    how far (Ctrl+C first commits the chunk in flight, and exits 0); the next run resumes
    after that id, and the table ends up exactly the file."""
    market = ArchiveMarket.generate([SYMBOL], START, START.replace(day=2), trades_per_day=60_000)
    name = f"{SYMBOL}-trades-2024-03-01.zip"
    env = dict(os.environ, BINPRICE_DATA_DIR=str(tmp_path))
    day = (SYMBOL, "--start", "2024-03-01", "--end", "2024-03-02")
    async with ArchiveServer(market) as archive:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "binprice", "--database-url", database_url, "import", *day),
            *("--commit-every", "1", "--archive-url", archive.url),
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        with psycopg.connect(database_url) as watcher:
            held = await _hold_when_partial(watcher, name)
            proc.send_signal(signum)
            if signum == signal.SIGKILL:
                await proc.wait()
            watcher.rollback()  # a stopping importer commits its chunk now
            async with asyncio.timeout(60):
                _, err = await proc.communicate()
        state, rows, _, first_id, last_id, _ = imports(database_url)[name]
        assert state == "partial" and 0 < rows < 60_000 and last_id == first_id + rows - 1
        assert len(stored_text(database_url)) == rows
        if signum == signal.SIGINT:
            assert proc.returncode == 0 and last_id >= held  # at most the chunk in flight more
            assert f"{name}: interrupted after trade id {last_id}" in err.decode()
        else:
            assert proc.returncode == -signal.SIGKILL and last_id == held
        code, _, out = await _binprice(
            database_url, *day, "--archive-url", archive.url, data_dir=tmp_path
        )
    assert code == 0, out
    assert f"{name}: resuming after trade id {last_id} ({rows:,} trades already stored)" in out
    assert imports(database_url)[name][:2] == ("done", 60_000)
    assert stored_text(database_url) == expected_text(market_trades(market))


async def _until_loaded(proc: asyncio.subprocess.Process, names: list[str]) -> bytes:
    """Read the import's lines until each file of `names` has its loaded line (printed after
    the file's last commit); what was read, for the final assertions."""
    assert proc.stderr is not None
    read, waiting = [], set(names)
    while waiting:
        line = await proc.stderr.readline()
        assert line, b"".join(read).decode()
        read.append(line)
        text = line.decode()
        waiting -= {name for name in waiting if f"{name}: " in text and " trades (" in text}
    return b"".join(read)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
async def test_a_stop_during_a_stalled_download_exits_at_once_and_says_what_is_stored(
    database_url: str, tmp_path: Path, signum: int
) -> None:
    """Two days loaded, the third's download stalled half way: one signal abandons the
    download (no partial file, no rows of it) instead of waiting out the read timeouts, and the
    summary counts the two files and their trades, the last stored id, and the day left for
    the next run (not loaded, not refused). Exit 0: a stop is not a failure."""
    market = _market()
    stalled = f"{SYMBOL}-trades-2024-03-03.zip"
    loaded = [f"{SYMBOL}-trades-2024-03-0{d}.zip" for d in (1, 2)]
    env = dict(os.environ, BINPRICE_DATA_DIR=str(tmp_path))
    async with ArchiveServer(market, ArchiveFaults(stalled={stalled})) as archive:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "binprice", "--database-url", database_url, "import", *RANGE),
            *("--archive-url", archive.url),
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            async with asyncio.timeout(60):
                await archive.stalled.wait()
                before = await _until_loaded(proc, loaded)
            proc.send_signal(signum)
            # Well inside the 60 s read timeout it used to wait out (three times over).
            async with asyncio.timeout(30):
                _, rest = await proc.communicate()
            raw = before + rest
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    err = raw.decode()
    assert proc.returncode == 0, err
    first_two = [t for t in market_trades(market) if t.time_ms < day_ms(date(2024, 3, 3))]
    assert stored_text(database_url) == expected_text(first_two)
    assert set(imports(database_url)) == set(loaded)
    last = first_two[-1].trade_id
    assert f"{SYMBOL}: 2 loaded, 1 not loaded; 40 trades loaded; last trade id {last}" in err
    assert f"{stalled}: not loaded: stopped while downloading; the next run imports it" in err
    assert f"not loaded (stopped): {stalled}; the next run imports it" in err
    assert "refused" not in err
    assert list((tmp_path / "downloads").iterdir()) == []


def test_import_command_and_its_options_have_help() -> None:
    """`binprice import` and every option of it say what they do."""
    from binprice.cli import app

    command = app.commands["import"]  # type: ignore[attr-defined]
    assert command.help
    for param in command.params:
        assert getattr(param, "help", None), f"import {param.name} lacks help"


#: Runs the command in argv[1:] and prints its peak RSS in KiB (Linux's ru_maxrss unit): only
#: that process is this one's child, so RUSAGE_CHILDREN is its peak alone.
_PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=False); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
#: What the issue allows `binprice import` on a 256 MB line with no end.
PEAK_RSS_LIMIT_MB = 200


@pytest.mark.slow
async def test_a_256_mb_line_with_no_end_is_refused_in_bounded_memory(
    database_url: str, tmp_path: Path
) -> None:
    """The probe of issue #22: a zip whose CSV is one 256 MB line without a newline. The real
    process refuses it in one line, and its peak RSS stays under 200 MB (it was over 1 GB)."""
    line = (b"1" * (1 << 20) for _ in range(256))
    path = write_csv_zip(tmp_path / f"{SYMBOL}-trades-2024-03-01.zip", line)
    env = dict(os.environ, BINPRICE_DATA_DIR=str(tmp_path / "data"))
    binprice = (sys.executable, "-m", "binprice", "--database-url", database_url, "import")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PEAK_RSS,
        *binprice,
        str(path),
        "--log-format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(600):
        out, err = await proc.communicate()
    peak_mb = int(out.decode().split()[-1]) / 1024
    assert peak_mb <= PEAK_RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    records = [json.loads(x) for x in err.decode().splitlines() if x.startswith("{")]
    [refused] = [r for r in records if r["event"] == "refused"]
    assert refused["file"] == path.name
    assert "malformed line 1: longer than 4,096 bytes with no end" in refused["message"]
