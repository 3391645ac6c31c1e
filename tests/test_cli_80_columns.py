"""Everything a person reads fits an 80-column terminal without a line wrapping in the middle
of a field (#20 item 7): `gaps`, `db partitions`, `candles`, the ingest summary and its
backfill progress, and every `--help` (no word broken across lines)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

from binprice.cli import app, cli
from binprice.cli.views.db import partitions_text
from binprice.cli.views.gaps import gaps_text
from binprice.cli.views.ingest import Monitor, summary_line, summary_lines
from binprice.cli.views.queries import candles_text
from binprice.db.candles import Candle
from binprice.db.gaps import Gap
from binprice.db.partitions import Partition
from binprice.events import EventKind, IngestEvent
from binprice.ingest.stats import IngestStats

WIDTH = 80
runner = CliRunner()
T = datetime(2026, 5, 28, 4, 13, 41, 983000, tzinfo=UTC)


def _fits(text: str, width: int = WIDTH) -> None:
    assert text.strip(), "nothing rendered"
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide


def test_gaps_fit_80_columns_with_long_symbols_and_ids() -> None:
    """A 12-character symbol, ten-digit ids, six-digit sizes: one line per gap, under 80."""
    gaps = [
        Gap("1000SATSUSDT", 6329162611, 6329286110, "filled", T, T + timedelta(minutes=3)),
        Gap("BTCUSDT", 6329162611, 6329162611, "open", T, None),
        Gap("ETHUSDT", 2934712312, 2934712399, "hole", T, T + timedelta(milliseconds=350)),
    ]
    text = gaps_text(gaps)
    _fits(text)
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[1].split() == [
        *("1000SATSUSDT", "6329162611", "6329286110", "123,500", "filled"),
        *("2026-05-28", "04:13", "+3m"),
    ]
    assert lines[3].split()[-1] == "+350ms"


def test_db_partitions_fit_80_columns() -> None:
    """Month bounds as dates: partition, from, to, rows, size in well under 80 columns."""
    months = [datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 4)]
    found = [
        Partition("trades_2026_01", months[0], months[1], 123_456_789, 10 * 1024**3),
        Partition("trades_2026_02", months[1], months[2], 98_765_432, 9 * 1024**3),
        Partition("trades_default", None, None, 0, 32768),
    ]
    text = partitions_text(found)
    _fits(text)
    assert text.splitlines()[1].split() == [
        *("trades_2026_01", "2026-01-01", "2026-02-01", "~123,456,789", "10.0", "GB"),
    ]


def _candle(symbol: str, n: int, price: str) -> Candle:
    open_time = T.replace(second=0, microsecond=0) + timedelta(minutes=n)
    p = Decimal(price)
    return Candle(
        symbol,
        open_time,
        open_time + timedelta(seconds=59.999),
        p,
        p + Decimal("91.71"),
        p - Decimal("107.31"),
        p + Decimal("40.7"),
        Decimal("12.34567800"),
        Decimal("902345.12345678"),
        18_345,
        p,
    )


def test_candles_are_a_table_at_80_columns_not_a_block_per_candle() -> None:
    """One line per candle under a title line per symbol: time, OHLC, trades, volume; the
    prices exact, with the decimals the column needs."""
    candles = [_candle("BTCUSDT", n, "73109.30000000") for n in range(3)]
    candles += [_candle("ETHUSDT", n, "3812.12000000") for n in range(2)]
    text = candles_text(candles, width=WIDTH)
    assert text is not None
    _fits(text)
    lines = text.splitlines()
    assert len(lines) == 2 + 3 + 1 + 2 + 2  # per symbol: title, header, one line per candle
    assert lines[0] == "BTCUSDT" and lines[1].split()[:3] == ["open", "(UTC)", "open"]
    assert lines[2].split() == [
        *("2026-05-28", "04:13", "73109.30", "73201.01", "73001.99", "73150.00"),
        *("18,345", "12.345678"),
    ]
    narrow = candles_text(candles, width=60)
    assert narrow is not None and "volume" not in narrow
    _fits(narrow, 60)


def _summary_with_everything() -> IngestStats:
    stats = IngestStats()
    for symbol in ("BTCUSDT", "ETHUSDT", "1000SATSUSDT"):
        c = stats.symbol(symbol)
        c.stored, c.received, c.backfilled, c.gaps = 74_277, 74_277, 66_000, 3
    stats.reconnects, stats.rotations, stats.rate_limited, stats.db_errors = 1234, 12, 2, 1
    stats.spilled, stats.dropped, stats.reconcile_found = 25_000, 17, 1_001
    stats.record_latencies(1_000_000, [1_000_000 - 6, 1_000_000 - 26])
    return stats


def test_the_ingest_summary_wraps_between_phrases_at_80_columns() -> None:
    """On a terminal the summary's phrases are joined while they fit: no line over 80, and
    the lines hold exactly the one-line summary's phrases."""
    summary = _summary_with_everything().summary()
    lines = summary_lines(summary, WIDTH)
    _fits("\n".join(lines))
    assert len(lines) > 1
    assert " ".join(lines) == summary_line(summary)


def test_the_summary_shows_lag_only_as_measured_and_one_number_format() -> None:
    """The lag's percentiles with the number of trades they are measured over, "n/a" with
    none; counts with thousands separators everywhere; no "(fetched)" claim."""
    line = summary_line(_summary_with_everything().summary())
    assert "lag p50 6 ms, p99 26 ms (of 2 trades)" in line
    assert "stored 222,831 trades" in line and "reconnects 1,234" in line
    assert not re.search(r"\d{4,}", line.replace(",", ",x")), line  # every 4+ digit run has commas
    assert "(fetched)" not in line
    assert "lag n/a (no trade committed)" in summary_line(IngestStats().summary())


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_backfill_is_one_progress_line_on_a_terminal_and_every_page_in_a_log() -> None:
    """66 pages of backfill: the live view keeps one line (the newest page) and leaves it on
    the screen at the end; a log gets all 66."""
    stats = _summary_with_everything()
    pages = [
        IngestEvent(1.0 + n, EventKind.BACKFILL, f"BTCUSDT: backfilled 1,000 trades from {n}")
        for n in range(66)
    ]
    outputs = {}
    for fmt in ("live", "plain"):
        stream = Terminal() if fmt == "live" else io.StringIO()
        monitor = Monitor(fmt, quiet=False, verbose=False, stream=stream)
        monitor.start()
        monitor.tick(stats.summary())
        for page in pages:
            monitor.event(page)
        monitor.final(stats.summary())
        outputs[fmt] = stream.getvalue()
    assert outputs["plain"].count("backfilled 1,000 trades from") == 66
    assert outputs["live"].count("backfilled 1,000 trades from") == 1
    assert "backfilled 1,000 trades from 65" in outputs["live"]


def _commands(group: TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name in group.list_commands(None):  # type: ignore[arg-type]
        command = group.get_command(None, name)  # type: ignore[arg-type]
        assert isinstance(command, TyperCommand | TyperGroup)
        found.append((*prefix, name))
        if isinstance(command, TyperGroup):
            found += _commands(command, (*prefix, name))
    return found


def _flowing(text: str) -> str:
    """Words joined by single spaces; a line broken after a hyphen (`re-` / `read`) joined
    back, as Click may break there."""
    return re.sub(r"- ", "-", " ".join(text.split()))


@pytest.mark.parametrize("path", [(), *_commands(app)], ids=lambda p: " ".join(p) or "binprice")
def test_every_help_fits_80_columns_and_breaks_no_word(path: tuple[str, ...]) -> None:
    """At COLUMNS=80 no help line is wider than 80, and every help text reads whole (its
    words, joined by single spaces, are in the output joined the same way: a word broken as
    `DB_HO` / `ST` would not be)."""
    result = runner.invoke(cli, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    _fits(result.stdout)
    flowing = _flowing(result.stdout)
    command = app
    for name in path:
        found = command.get_command(None, name)  # type: ignore[arg-type]
        assert isinstance(found, TyperCommand | TyperGroup)
        command = found
    texts = [command.help or ""] + [
        getattr(p, "help", None) or "" for p in command.params if not getattr(p, "hidden", False)
    ]
    for text in texts:
        first_paragraph = text.split("\n\n")[0]
        assert _flowing(first_paragraph) in flowing, (path, first_paragraph)
