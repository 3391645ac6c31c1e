"""watch: snapshots from a pinned clock, the live table and lines, and the command end to end."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from rich.console import Console

from binprice.cli.views.watch import sparkline, to_line, to_table
from binprice.watch import Snapshot, Watch, snapshot
from tests.trades_data import Row, load

NOW = datetime(2026, 5, 28, 12, 0, 0, tzinfo=UTC)


def rows() -> list[Row]:
    """BTCUSDT: one trade a minute for 90 minutes, price rising 1 a minute; 20 in the last 10 s."""
    minute, burst = timedelta(minutes=1), timedelta(seconds=9.5)
    out = [
        Row("BTCUSDT", i, Decimal(100 + i), Decimal("0.5"), NOW - (90 - i) * minute)
        for i in range(90)
    ]
    out += [
        Row("BTCUSDT", 100 + i, Decimal("190.5"), Decimal(1), NOW - burst + i * burst / 38)
        for i in range(20)
    ]
    out.append(Row("ETHUSDT", 1, Decimal("2000"), Decimal(1), NOW - timedelta(minutes=5)))
    return out


@pytest.fixture
def url(database_url: str) -> str:
    load(database_url, rows())
    return database_url


def take(url: str, symbols: list[str]) -> Snapshot:
    with psycopg.connect(url) as conn:
        return snapshot(conn, symbols, window=timedelta(hours=1), now=NOW)


def test_snapshot_price_change_rate_and_minutes(url: str) -> None:
    """Last price, change against the as-of price an hour ago, trades/s over 10 s, closes."""
    btc, eth, never = take(url, ["btcusdt", "ETHUSDT", "NOPEUSDT"]).symbols
    assert btc.price == Decimal("190.5")
    assert btc.reference_price == Decimal(130)  # the trade at NOW - 60 min
    assert btc.change == Decimal("60.5")
    assert btc.change_percent is not None and round(btc.change_percent, 4) == Decimal("46.5385")
    assert btc.trades_per_second == Decimal(2)  # 20 trades in 10 s
    # 11:31 to 12:00, the minute now beginning (no trade in it yet) last.
    assert len(btc.closes) == 30 and btc.closes[-2:] == (Decimal("190.5"), None)
    assert btc.closes[0] == Decimal(161)
    assert eth.change == 0 and eth.price == Decimal(2000)  # its first trade in the window
    assert eth.closes.count(None) == 29
    assert never.price is None and never.trades_per_second == 0


def test_all_recorded_symbols_by_default_and_the_clock_is_injected(url: str) -> None:
    """No symbols: every recorded one; each poll asks the clock."""
    moments = iter([NOW, NOW + timedelta(hours=2)])
    with psycopg.connect(url) as conn:
        watch = Watch(conn, clock=lambda: next(moments))
        first, later = watch.poll(), watch.poll()
    assert [s.symbol for s in first.symbols] == ["BTCUSDT", "ETHUSDT"]
    assert first.taken_at == NOW and later.symbols[0].change == 0  # quiet for 2 h
    assert later.symbols[0].trades_per_second == 0


@pytest.mark.parametrize("width", [80, 120])
def test_live_table_renders_at_terminal_widths(url: str, width: int) -> None:
    """The Rich table fits 80 and 120 columns with every symbol, colours on."""
    console = Console(width=width, force_terminal=True, record=True, color_system="truecolor")
    console.print(to_table(take(url, ["BTCUSDT", "ETHUSDT", "NOPEUSDT"])))
    text = console.export_text(clear=False)
    assert all(len(line) <= width for line in text.splitlines())
    assert "BTCUSDT" in text and "190.5" in text and "+60.5 +46.54%" in text and "never" in text
    rows = [line for line in text.splitlines() if "USDT" in line]
    assert len(rows) == 3  # one line per symbol: nothing wrapped
    assert "\x1b[" in console.export_text(styles=True)


def test_line_for_a_pipe_and_sparkline() -> None:
    """One line per update; the sparkline spans the lowest to the highest close."""
    assert sparkline([Decimal(1), None, Decimal(5), Decimal(3)]) == "▁ █▄"
    assert sparkline([None, None]) == "  " and sparkline([Decimal(2)] * 3) == "▄▄▄"
    empty = Snapshot(NOW, timedelta(hours=1), timedelta(seconds=10), ())
    assert to_line(empty) == "2026-05-28T12:00:00.000Z"


def test_watch_command_prints_count_lines_off_a_terminal(url: str) -> None:
    """--count 3 in a pipe: three lines, exit 0."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "binprice",
            "--database-url",
            url,
            "watch",
            "BTCUSDT",
            "--count",
            "3",
            "--every",
            "100ms",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(" BTCUSDT 190.5 " in line for line in lines)


def test_ctrl_c_exits_0(url: str) -> None:
    """SIGINT after the first update (read, not slept for) ends the watch with status 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "binprice", "--database-url", url, "watch", "--every", "100ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert "BTCUSDT" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def run_in_pty(
    args: list[str], *, pty_for: str = "stdout", env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """Run binprice with stdout (or stderr) on a pseudo-terminal; return it and the screen."""
    master, slave = pty.openpty()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, pty_for: slave}
    done = subprocess.run(
        [sys.executable, "-m", "binprice", *args], **streams, env=env, timeout=60, check=False
    )
    os.close(slave)
    screen = b""
    try:
        while chunk := os.read(master, 65536):
            screen += chunk
    except OSError:  # the pty's other side is closed: all read
        pass
    os.close(master)
    return done, screen


@pytest.mark.parametrize("columns", [80, 120])
def test_watch_on_a_terminal_draws_the_live_table(url: str, columns: int) -> None:
    """In a pseudo-terminal the Rich live view is drawn; no traceback; exit 0."""
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "24"}
    args = ["--database-url", url, "watch", "--count", "2", "--every", "100ms"]
    done, screen = run_in_pty(args, env=env)
    assert done.returncode == 0, done.stderr
    assert b"change over 1h" in screen and b"BTCUSDT" in screen
