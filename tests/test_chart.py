"""chart: candles or a trade line drawn by plotext at 80 and 120 columns, and as a PNG."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from binprice.charts import chart_data, price_path
from binprice.cli.views.chart import chart_text, max_candles
from binprice.db.candles import INTERVALS, candles
from tests.trades_data import Row, load

T0 = datetime(2026, 5, 20, tzinfo=UTC)


def rows() -> list[Row]:
    """BTCUSDT every 20 s for two days, a zig-zag price."""
    return [
        Row(
            "BTCUSDT",
            i,
            Decimal(67000) + Decimal(i % 37) - Decimal(i % 11) / 4,
            Decimal("0.01"),
            T0 + timedelta(seconds=20 * i),
        )
        for i in range(2 * 4320)
    ]


@pytest.fixture
def url(database_url: str) -> str:
    load(database_url, rows())
    return database_url


def binprice(url: str, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "24"}
    return subprocess.run(
        [sys.executable, "-m", "binprice", "--database-url", url, "chart", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("width", [80, 120])
def test_candles_and_lines_render_within_the_width(url: str, width: int) -> None:
    """Both kinds of chart fit the width, with price labels and UTC time labels."""
    end = T0 + timedelta(days=1)
    with psycopg.connect(url) as conn:
        found = candles(conn, ["BTCUSDT"], "1h", T0, end)
        path = price_path(conn, "BTCUSDT", T0, T0 + timedelta(minutes=1), 100)
    for data, interval, stop in (
        (found, INTERVALS["1h"], end),
        (path, None, T0 + timedelta(minutes=1)),
    ):
        text = chart_text(
            "BTCUSDT",
            data,
            start=T0,
            end=stop,
            interval=interval,
            width=width,
            height=20,
            color=False,
        )
        lines = text.splitlines()
        assert len(lines) == 20 and all(len(line) <= width for line in lines)
        assert "BTCUSDT" in lines[0] and "670" in text
        assert "00:00" in lines[-1]


def test_interval_is_chosen_to_fit_and_one_interval_is_a_line(url: str) -> None:
    """Auto interval: a day at 80 columns is hourly candles; a 40 s window is a line."""
    assert max_candles(80) == 34
    with psycopg.connect(url) as conn:
        title, data, interval = chart_data(
            conn, "btcusdt", T0, T0 + timedelta(days=1), None, max_candles=34
        )
        assert interval is not None and interval.name == "1h" and len(data) == 24
        assert title.startswith("BTCUSDT 1h candles")
        title, data, interval = chart_data(
            conn, "BTCUSDT", T0, T0 + timedelta(seconds=40), None, max_candles=34
        )
        assert interval is None and title.startswith("BTCUSDT trades")
        _, data, interval = chart_data(
            conn, "BTCUSDT", T0, T0 + timedelta(minutes=2), None, max_candles=34
        )
        assert interval is None  # two 1m candles would say less than the trades
        _, data, interval = chart_data(
            conn, "BTCUSDT", T0, T0 + timedelta(hours=1), "1h", max_candles=34
        )
        assert interval is None  # one candle's worth, even when the interval is given


def test_price_path_keeps_at_most_the_points_asked(url: str) -> None:
    """Thinned to the last trade per slot: bounded whatever the window holds."""
    with psycopg.connect(url) as conn:
        path = price_path(conn, "BTCUSDT", T0, T0 + timedelta(days=2), 50)
    assert 0 < len(path.times) <= 50 and list(path.times) == sorted(path.times)


@pytest.mark.parametrize("columns", [80, 120])
def test_chart_command_draws_at_the_terminal_width(url: str, columns: int) -> None:
    """The command sizes the chart to COLUMNS; no traceback; exit 0."""
    done = binprice(url, "BTCUSDT", "--start", "2026-05-20", "--end", "2026-05-22", columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "candles" in lines[0] and max(len(line) for line in lines) <= columns
    assert "05-2" in lines[-1]  # dates on the time axis


def test_png_is_written(url: str, tmp_path: Path) -> None:
    """--png writes an image through matplotlib as well as drawing in the terminal."""
    target = tmp_path / "chart.png"
    done = binprice(
        url, "BTCUSDT", "--start", "2026-05-20", "--end", "2026-05-21", "--png", str(target)
    )
    assert done.returncode == 0, done.stderr
    assert target.read_bytes().startswith(b"\x89PNG")


def test_no_trades_exits_1(url: str) -> None:
    """A window without trades: one line, exit 1."""
    done = binprice(url, "BTCUSDT", "--start", "2025-01-01", "--end", "2025-01-02")
    assert done.returncode == 1 and done.stderr.startswith("error: no trades")
