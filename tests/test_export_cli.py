"""`binprice candles` and `binprice export` as users run them: shapes, outputs, exit codes, help."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from binprice.cli import app
from tests.conftest import run_binprice
from tests.test_export import make_rows
from tests.test_watch import run_in_pty
from tests.trades_data import load

CANDLE_KEYS = [
    *("symbol", "open_time", "close_time", "open", "high", "low", "close"),
    *("volume", "quote_volume", "trades", "vwap"),
]
WINDOW = ("--start", "2024-12-31T22:00:00Z", "--end", "2025-01-01T02:00:00Z")


@pytest.fixture
def url(database_url: str) -> str:
    load(database_url, make_rows(count=500))
    return database_url


def binprice(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_binprice("--database-url", url, *args)


def test_candles_json_keys_and_exact_values(url: str) -> None:
    """--json: one object per candle, the documented keys, decimals as exact strings."""
    done = binprice(url, "candles", "btcusdt", "-i", "1h", *WINDOW, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data) == 4 and all(list(item) == CANDLE_KEYS for item in data)
    assert data[2]["open_time"] == "2025-01-01T00:00:00.000Z"
    assert data[2]["close_time"] == "2025-01-01T00:59:59.999Z"
    assert isinstance(data[0]["trades"], int) and "E" not in data[0]["volume"]
    assert sum(item["trades"] for item in data) == 500


def test_candles_takes_the_interval_as_an_argument_and_defaults_to_the_last_60(url: str) -> None:
    """`candles BTCUSDT 1h` (no -i, no window): the last 60 candles up to --end (default now),
    the same candles -i and a window holding them give; 60 candles ending at 02:00 reach back
    to 2024-12-29T07:00Z."""
    with_option = binprice(url, "candles", "btcusdt", "-i", "1h", *WINDOW, "--json")
    done = binprice(url, "candles", "btcusdt", "1h", "--end", "2025-01-01T02:00:00Z", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(with_option.stdout)
    later = binprice(url, "candles", "btcusdt", "1h", "--end", "2025-01-03T11:00:00Z", "--json")
    assert [c["open_time"] for c in json.loads(later.stdout)][:1] == ["2025-01-01T00:00:00.000Z"]
    now = binprice(url, "candles", "BTCUSDT", "1m")
    assert now.returncode == 1
    assert now.stderr.startswith("error: no trades in the last 60 1m candles up to ")


def test_candles_csv_and_missing_symbols(url: str) -> None:
    """--csv has the header; a symbol without trades is named on stderr; exit 0."""
    done = binprice(url, "candles", "NOPEUSDT", "ETHUSDT", "-i", "1d", *WINDOW, "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == CANDLE_KEYS and [r["open_time"][:10] for r in rows] == [
        "2024-12-31",
        "2025-01-01",
    ]
    assert done.stderr.strip() == "no trades for: NOPEUSDT"


@pytest.mark.parametrize(
    "args",
    [
        ("candles", "BTCUSDT", "-i", "1x", "--last", "1d"),
        ("candles", "BTCUSDT", "--last", "1d"),
        ("candles", "BTCUSDT", "1h", "-i", "1h"),
        ("candles", "1h", "--last", "1d"),
        ("candles", "BTCUSDT", "-i", "1h", "--last", "1d", "--json", "--csv"),
        ("export", "BTCUSDT", "-f", "xlsx", "--last", "1d"),
        ("export", "BTCUSDT", "ETHUSDT", "-f", "binance", *WINDOW),
        ("chart", "BTCUSDT", "--last", "1d", "-i", "2w"),
        ("watch", "--window", "soon"),
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_input_exits_2_with_one_line(url: str, args: tuple[str, ...]) -> None:
    """Bad intervals, formats, windows or flag combinations: exit 2 and a one-line reason."""
    done = binprice(url, *args)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_nothing_found_exits_1(url: str) -> None:
    """No trades in the window for any symbol: one error line, exit 1, nothing written."""
    for command in (("candles", "-i", "1m"), ("export", "-f", "csv")):
        done = binprice(url, command[0], "BTCUSDT", *command[1:], "--last", "1m")
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith("error: no trades")


def test_export_csv_to_stdout_and_parquet_to_a_file(url: str, tmp_path: Path) -> None:
    """CSV to stdout equals the table's row count; Parquet to --output reads back."""
    done = binprice(url, "export", "BTCUSDT", "ETHUSDT", *WINDOW, "-f", "csv")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 + 1000
    target = tmp_path / "trades.parquet"
    done = binprice(url, "export", "BTCUSDT", *WINDOW, "-f", "parquet", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert pq.read_table(target).num_rows == 500


def test_export_binance_to_a_directory(url: str, tmp_path: Path) -> None:
    """Several symbols need a directory: Binance's daily zips and checksums land there."""
    target = tmp_path / "archive"
    done = binprice(
        url, "export", "BTCUSDT", "ETHUSDT", *WINDOW, "-f", "binance", "-o", str(target)
    )
    assert done.returncode == 0, done.stderr
    assert len(list(target.glob("*-trades-*.zip"))) == 4
    assert len(list(target.glob("*.zip.CHECKSUM"))) == 4
    single = tmp_path / "one.csv"
    done = binprice(url, "export", "ETHUSDT", *WINDOW, "-f", "binance", "-o", str(single))
    assert done.returncode == 0 and len(single.read_text().splitlines()) == 500


@pytest.mark.parametrize("fmt", ["csv", "binance"])
def test_export_into_a_named_pipe_writes_into_it_and_leaves_it_a_pipe(
    url: str, tmp_path: Path, fmt: str
) -> None:
    """`-o` naming a device or a pipe (`/dev/null`, a FIFO) writes into it: the whole-or-nothing
    rename of a regular file would replace the device with a regular file."""
    fifo = tmp_path / "trades.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with fifo.open("rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done = binprice(url, "export", "BTCUSDT", *WINDOW, "-f", fmt, "-o", str(fifo))
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    reader.join(timeout=60)  # a hang guard: the reader ends when the export closes the pipe
    lines = received[0].decode().splitlines()
    assert len(lines) == 500 + (fmt == "csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades.fifo"]


@pytest.mark.parametrize("command", ["candles", "chart", "export", "watch"])
def test_explore_commands_have_help(command: str) -> None:
    """Every command and option has help text."""
    click_command = app.commands[command]  # type: ignore[attr-defined]
    assert click_command.help
    for param in click_command.params:
        if param.name not in {"ctx"}:
            assert getattr(param, "help", None), f"{command} {param.name} lacks help"


def test_export_progress_bar_on_a_terminal(url: str, tmp_path: Path) -> None:
    """With stderr a terminal a Rich progress bar is drawn there; the file is complete."""
    target = tmp_path / "out.csv"
    args = ["--database-url", url, "export", "BTCUSDT", *WINDOW, "-f", "csv", "-o", str(target)]
    done, screen = run_in_pty(args, pty_for="stderr")
    assert done.returncode == 0
    assert b"Traceback" not in screen and b"export" in screen
    assert len(target.read_text().splitlines()) == 501


def _without(modules: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess where `modules` cannot be imported (an install without
    the extra)."""
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in modules)
    script = f"import sys; {hide}; sys.argv[0] = 'binprice'; from binprice.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )


def _parquet_without_pyarrow(url: str, target: Path) -> subprocess.CompletedProcess[str]:
    """`binprice export BTCUSDT -f parquet -o TARGET` where pyarrow cannot be imported."""
    return _without(
        ("pyarrow",),
        *("--database-url", url, "export", "BTCUSDT", *WINDOW, "-f", "parquet", "-o", str(target)),
    )


def test_parquet_without_pyarrow_names_this_interpreters_pip_and_leaves_no_file(
    url: str, tmp_path: Path
) -> None:
    """A missing extra: one line with the command for this environment (never the package
    index's unrelated `binprice`), rc 1, and no empty file left where the export was going."""
    target = tmp_path / "btc.parquet"
    done = _parquet_without_pyarrow(url, target)
    assert done.returncode == 1
    assert done.stderr == f"error: Parquet needs pyarrow: {sys.executable} -m pip install pyarrow\n"
    assert "binprice[" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_png_without_matplotlib_says_how_to_add_it(url: str, tmp_path: Path) -> None:
    """`chart --png` without matplotlib: the same one-line advice, no PNG written."""
    target = tmp_path / "btc.png"
    done = _without(
        ("matplotlib",), "--database-url", url, "chart", "BTCUSDT", *WINDOW, "--png", str(target)
    )
    assert done.returncode == 1
    assert done.stderr.endswith(
        f"error: --png needs matplotlib: {sys.executable} -m pip install matplotlib\n"
    )
    assert not target.exists()


def test_a_failed_export_leaves_the_previous_file_as_it_was(url: str, tmp_path: Path) -> None:
    """An export that fails after opening its output does not clobber an existing file."""
    target = tmp_path / "btc.parquet"
    target.write_bytes(b"yesterday's export")
    done = _parquet_without_pyarrow(url, target)
    assert done.returncode == 1
    assert target.read_bytes() == b"yesterday's export"
    assert [p.name for p in tmp_path.iterdir()] == ["btc.parquet"]
