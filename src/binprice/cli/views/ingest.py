"""What `binprice ingest` shows: a Rich live table on a terminal, log lines elsewhere.

Pure formatting functions plus one small class that owns the output. The pipeline never prints;
it reports events and exposes counters, and this module decides how they look:

- `live`: a Rich table per symbol (stored, trades/s, last price, lag, reconnects, gaps), events
  printed above it;
- `plain`: one line per event and a summary line every `interval` seconds;
- `json`: the same as JSON objects, one per line, for log shippers;
- quiet: only errors and the final summary.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from binprice.events import EventKind, IngestEvent
from binprice.exchange.protocol import SeriesRecord
from binprice.ingest.stats import IngestSummary, SymbolStats

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table

FORMATS = ("auto", "live", "plain", "json")
SUMMARY_INTERVAL_SECONDS = 10.0
LIVE_REFRESH_PER_SECOND = 4


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _ms_iso(ms: int | None) -> str | None:
    return None if ms is None else _iso(ms / 1000)


def summary_record(summary: IngestSummary) -> dict[str, Any]:
    """The summary as JSON-ready data (decimals as strings)."""

    def clean(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{value:f}"  # never exponent notation
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, float):
            return round(value, 3)
        return value

    data = clean(asdict(summary))
    assert isinstance(data, dict)
    return data


def summary_parts(summary: IngestSummary) -> list[str]:
    """The summary's phrases: what was stored, how fast, what went wrong. Every count with
    thousands separators; the lag only as measured (with how many trades it is measured over)."""
    rate = summary.stored / summary.elapsed if summary.elapsed > 0 else 0.0
    parts = [
        f"stored {summary.stored:,} trades in {summary.elapsed:,.1f} s ({rate:,.0f}/s)",
        f"duplicates {summary.duplicates:,}",
        f"reconnects {summary.reconnects:,} (rotations {summary.rotations:,}, "
        f"stale {summary.stale:,})",
        f"gaps {summary.gaps:,} (backfilled {summary.backfilled:,}, missing {summary.missing:,}, "
        f"skipped {summary.skipped:,})",
    ]
    if summary.connect_problem:
        parts.insert(1, f"not connected: {summary.connect_problem}")
    if summary.rate_limited:
        parts.append(f"rate limited {summary.rate_limited:,}")
    if summary.db_errors:
        parts.append(f"db errors {summary.db_errors:,}")
    if summary.malformed or summary.error_frames:
        parts.append(f"bad frames {summary.malformed + summary.error_frames:,}")
    if summary.spilled:
        parts.append(f"spooled {summary.spilled:,}")
    if summary.dropped:
        parts.append(f"dropped {summary.dropped:,} (recorded as gaps)")
    if summary.reconcile_found:
        # Found missing and recorded as gaps; whether each is filled yet is the gaps table's
        # to say (`binprice gaps`), not this line's.
        parts.append(f"behind the exchange {summary.reconcile_found:,} ids (recorded as gaps)")
    if len(summary.delivered_first) > 1:
        firsts = ", ".join(f"{k} {v:,}" for k, v in summary.delivered_first.items())
        parts.append(f"first from {firsts}")
    parts.append(lag_text(summary))
    return parts


def lag_text(summary: IngestSummary) -> str:
    """Trade time → commit, as measured: percentiles over the committed trades, or n/a."""
    if not summary.latency_samples or summary.latency_p50_ms is None:
        return "lag n/a (no trade committed)"
    return (
        f"lag p50 {summary.latency_p50_ms:,.0f} ms, p99 {summary.latency_p99_ms or 0:,.0f} ms "
        f"(of {summary.latency_samples:,} trades)"
    )


def summary_line(summary: IngestSummary) -> str:
    """One human line (a log, a pipe): the phrases joined."""
    return "; ".join(summary_parts(summary))


def summary_lines(summary: IngestSummary, width: int) -> list[str]:
    """The summary for a terminal `width` columns wide: phrases joined while they fit, so no
    line wraps in the middle of one (a phrase wider than the terminal stands alone)."""
    lines: list[str] = []
    for part in summary_parts(summary):
        if lines and len(lines[-1]) + 2 + len(part) + 1 <= width:
            lines[-1] += f"; {part}"
        else:
            if lines:
                lines[-1] += ";"
            lines.append(part)
    return lines


def trade_line(trade: SeriesRecord) -> str:
    """The original design's log of incoming trades (`-v`)."""
    side = "sell" if trade.is_buyer_maker else "buy"
    return (
        f"{_ms_iso(trade.time_ms)} {trade.symbol} #{trade.trade_id} {side} "
        f"{trade.quantity:f} @ {trade.price:f}"
    )


#: Live columns, most important first: on a narrow terminal the last ones go (their totals stay
#: in the title), so no value is ever cut to `…`.
LIVE_COLUMNS = (
    "symbol",
    "stored",
    "last price",
    "lag",
    "gaps",
    "trades/s",
    "backfilled",
    "dups",
    "missing",
    "skipped",
)


def _live_cells(s: SymbolStats) -> dict[str, str]:
    return {
        "symbol": s.symbol,
        "stored": f"{s.stored:,}",
        "trades/s": f"{s.trades_per_second:,.0f}",
        "last price": "-" if s.last_price is None else f"{s.last_price:f}",
        "lag": "-" if s.lag_ms is None else f"{s.lag_ms} ms",
        "dups": f"{s.duplicates:,}",
        "gaps": str(s.gaps),
        "backfilled": f"{s.backfilled:,}",
        "missing": f"{s.missing:,}",
        "skipped": f"{s.skipped:,}",
    }


def _rest_cells(rest: Sequence[SymbolStats]) -> dict[str, str]:
    """One row summing the symbols the live table leaves out."""
    return {
        "symbol": f"{len(rest):,} more",
        "stored": f"{sum(s.stored for s in rest):,}",
        "trades/s": f"{sum(s.trades_per_second for s in rest):,.0f}",
        "last price": "",
        "lag": "",
        "dups": f"{sum(s.duplicates for s in rest):,}",
        "gaps": str(sum(s.gaps for s in rest)),
        "backfilled": f"{sum(s.backfilled for s in rest):,}",
        "missing": f"{sum(s.missing for s in rest):,}",
        "skipped": f"{sum(s.skipped for s in rest):,}",
    }


def live_columns(rows: Sequence[dict[str, str]], width: int) -> list[str]:
    """The most columns that fit `width` with Rich's default box (a border and one space
    either side of each cell)."""
    chosen: list[str] = []
    used = 1
    for name in LIVE_COLUMNS:
        cell = max([len(name), *(len(row[name]) for row in rows)])
        if used + cell + 3 > width and len(chosen) >= 2:
            break
        chosen.append(name)
        used += cell + 3
    return chosen


def live_rows(symbols: Sequence[SymbolStats], limit: int) -> tuple[list[SymbolStats], int]:
    """At most `limit` symbols for the live table: those missing trades first, then the busiest
    (so `--all`'s 1,400 symbols fit a terminal), in symbol order; and how many are left out."""
    if len(symbols) <= limit:
        return list(symbols), 0
    ranked = sorted(symbols, key=lambda s: (-s.missing, -s.gaps, -s.trades_per_second, -s.stored))
    shown = sorted(ranked[: max(limit - 1, 1)], key=lambda s: s.symbol)
    return shown, len(symbols) - len(shown)


def live_table(
    symbols: Sequence[SymbolStats],
    summary: IngestSummary,
    width: int = 200,
    height: int | None = None,
) -> Table:
    """The live view; with `height`, it fits that many lines (the rest summed in one row)."""
    from rich.table import Table

    title = (
        f"binprice ingest: {summary.stored:,} stored, {summary.reconnects} reconnects "
        f"({summary.rotations} rotations, {summary.stale} stale), "
        f"{summary.malformed + summary.error_frames} bad frames, "
        f"{summary.rate_limited} rate limited, {summary.db_errors} db errors"
    )
    # Title (one or two lines), header, borders and event lines above: keep ~8 lines spare.
    limit = len(symbols) if height is None else max(height - 8, 3)
    picked, left_out = live_rows(symbols, limit)
    rows = [_live_cells(s) for s in picked]
    if left_out:
        names = {s.symbol for s in picked}
        rows.append(_rest_cells([s for s in symbols if s.symbol not in names]))
    columns = live_columns(rows, width)
    hidden = [name for name in LIVE_COLUMNS if name not in columns]
    if hidden:
        totals = {
            "backfilled": summary.backfilled,
            "dups": summary.duplicates,
            "missing": summary.missing,
            "skipped": summary.skipped,
        }
        shown = [f"{name} {totals[name]:,}" for name in hidden if name in totals]
        if shown:
            title += "; " + ", ".join(shown)
    if summary.connect_problem:
        nothing = "nothing stored yet; " if summary.stored == 0 else ""
        title += f"\n{nothing}not connected: {summary.connect_problem} (retrying)"
    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name, justify="left" if name == "symbol" else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(row[name] for name in columns))
    return table


class Monitor:
    """Owns the ingest output for one run."""

    def __init__(
        self, fmt: str, *, quiet: bool, verbose: bool, stream: IO[str] | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        if fmt == "auto":
            fmt = "live" if self.stream.isatty() else "plain"
        self.format = fmt
        self.quiet = quiet
        self.verbose = verbose
        self._live: Live | None = None
        self._last_summary = time.monotonic()
        #: On a terminal, the newest backfill page: one line under the table, not one per page.
        self._progress: str | None = None
        self._summary: IngestSummary | None = None

    def start(self) -> None:
        if self.format == "live" and not self.quiet:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            self._live = Live(console=console, refresh_per_second=LIVE_REFRESH_PER_SECOND)
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            if self._progress is not None:  # where the backfill got to stays on the screen
                self._live.console.print(self._progress, markup=False, highlight=False)
                self._progress = None
                self._refresh()
            self._live.stop()
            self._live = None

    def message(self, kind: EventKind, text: str) -> None:
        """A line that is not an ingest event (start-up steps), shown in every format."""
        self.event(IngestEvent(time.time(), kind, text))

    def event(self, event: IngestEvent) -> None:
        if self.quiet and not event.kind.is_problem:
            return
        if self.format == "json":
            self._write(_record(event))
        elif self._live is not None and event.kind is EventKind.BACKFILL:
            self._progress = f"{_iso(event.time)} {event.message}"
            self._refresh()
        elif self._live is not None:
            self._live.console.print(f"[dim]{_iso(event.time)}[/] {event.message}", markup=True)
        else:
            self._write(f"{_iso(event.time)} {event.message}")

    def stored(self, trades: list[SeriesRecord]) -> None:
        """Called after each commit; prints the trades with -v."""
        if not self.verbose:
            return
        if self.format == "json":
            for t in trades:
                record = {
                    "event": "trade",
                    "symbol": t.symbol,
                    "trade_id": t.trade_id,
                    "price": f"{t.price:f}",
                    "quantity": f"{t.quantity:f}",
                    "timestamp": _ms_iso(t.time_ms),
                    "is_buyer_maker": t.is_buyer_maker,
                }
                self._write(json.dumps(record))
        else:
            out = self._live.console.print if self._live is not None else self._write
            for t in trades:
                out(trade_line(t))

    def tick(self, summary: IngestSummary) -> None:
        """Refresh the live table, or print the periodic summary line."""
        if self.quiet:
            return
        if self._live is not None:
            self._summary = summary
            self._refresh()
            return
        now = time.monotonic()
        if now - self._last_summary < SUMMARY_INTERVAL_SECONDS:
            return
        self._last_summary = now
        if self.format == "json":
            self._write(
                json.dumps(
                    {"time": _iso(time.time()), "event": "summary", **summary_record(summary)}
                )
            )
        else:
            self._write(f"{_iso(time.time())} {summary_line(summary)}")

    def fatal(self, message: str) -> None:
        """The error that ends the run, as the JSON log's last line (whatever `quiet` says)."""
        self.stop()
        self._write(_record(IngestEvent(time.time(), EventKind.FATAL, message)))

    def _refresh(self) -> None:
        """Redraw the live view: the table, and under it the backfill's progress line."""
        if self._live is None or self._summary is None:
            return
        console = self._live.console
        summary = self._summary
        table = live_table(summary.symbols, summary, width=console.width, height=console.height)
        if self._progress is None:
            self._live.update(table)
            return
        from rich.console import Group
        from rich.text import Text

        self._live.update(Group(table, Text(self._progress, no_wrap=True, overflow="ellipsis")))

    def final(self, summary: IngestSummary) -> None:
        # On a terminal the summary is wrapped between its phrases, never inside one.
        if self._live is not None:
            width = self._live.console.width
        else:
            width = shutil.get_terminal_size().columns if self.format == "live" else 0
        self.stop()
        if self.format == "json":
            self._write(
                json.dumps({"time": _iso(time.time()), "event": "final", **summary_record(summary)})
            )
        elif width:
            for line in summary_lines(summary, width):
                self._write(line)
        else:
            self._write(summary_line(summary))

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def _record(event: IngestEvent) -> str:
    """An event as a line of the JSON log."""
    return json.dumps(
        {
            "time": _iso(event.time),
            "event": event.kind.label,
            "severity": event.kind.severity.name.lower(),
            "message": event.message,
        }
    )
