"""What `binprice import` shows: Rich progress bars on a terminal, one line per file elsewhere.

Pure formatting plus one class that owns the output (stderr). The library reports typed events
and per-block progress; this module decides how they look:

- `live`: a bar per symbol (files, trades, MB/s of CSV, ETA), the file lines printed above;
- `plain`: one line per file and per notable event, then a summary;
- `json`: the same as JSON objects, one per line;
- quiet: only warnings, errors and the summary.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from binprice.history import FileProgress, FileResult, ImportEvent, ImportSummary

FORMATS = ("auto", "live", "plain", "json")


class ImportView:
    """Owns the output of one run (stderr)."""

    def __init__(
        self, fmt: str, *, quiet: bool, stream: IO[str] | None = None, kind: str = "trades"
    ) -> None:
        from binprice.cli.views.queries import records_of

        self.stream = stream or sys.stderr
        #: What the bars count: trades, or aggregate trades (`--kind`).
        self.noun = records_of(kind)
        self.format = ("live" if self.stream.isatty() else "plain") if fmt == "auto" else fmt
        self.quiet = quiet
        self._progress: Progress | None = None
        self._bars: dict[str, _Bar] = {}

    def start(self) -> None:
        if self.format == "live" and not self.quiet:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description:<10}"),
                BarColumn(),
                TextColumn("{task.fields[files]}"),
                TextColumn(f"{{task.fields[trades]:>14}} {self.noun}"),
                TextColumn("{task.fields[rate]:>9}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._progress.start()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def line(self, message: str, record: dict[str, Any] | None = None) -> None:
        if self.format == "json":
            self._write(
                json.dumps({"time": _now(), **(record or {"event": "message"}), "message": message})
            )
        elif self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            self._write(f"{_now()} {message}")

    def event(self, event: ImportEvent) -> None:
        from binprice.events import EventKind
        from binprice.history import Severity

        bar = self._bar(event.symbol)
        if event.kind is EventKind.PLANNED or event.kind is EventKind.DAILY_INSTEAD:
            bar.total += event.files
        elif event.result is not None:
            loaded = event.kind is EventKind.LOADED
            bar.finished(event.result.name, event.result.rows if loaded else 0)
        elif event.kind is EventKind.DONE:
            bar.done = bar.total
        self._draw(event.symbol)
        if self.quiet and event.severity < Severity.WARNING:
            return
        record: dict[str, Any] = {"event": event.kind.label, "symbol": event.symbol}
        if event.file is not None:
            record["file"] = event.file
        if event.result is not None:
            r = event.result
            record |= {
                "status": r.status.value,
                "rows": r.rows,
                "inserted": r.inserted,
                "first_id": r.first_id,
                "last_id": r.last_id,
                "seconds": round(r.seconds, 3),
            }
        self.line(event.message, record)

    def progress(self, p: FileProgress) -> None:
        bar = self._bar(p.symbol)
        bar.current(p)
        self._draw(p.symbol)

    def _bar(self, symbol: str) -> _Bar:
        bar = self._bars.get(symbol)
        if bar is None:
            bar = self._bars[symbol] = _Bar()
            if self._progress is not None:
                bar.task = self._progress.add_task(symbol, total=None, files="", trades="", rate="")
        return bar

    def _draw(self, symbol: str) -> None:
        bar = self._bars[symbol]
        if self._progress is None or bar.task is None:
            return
        self._progress.update(
            bar.task,
            total=max(bar.total, 1),
            completed=min(bar.done + bar.fraction, bar.total),
            files=f"{bar.done}/{bar.total} files",
            trades=f"{bar.rows + bar.current_rows:,}",
            rate=f"{bar.rate():.1f} MB/s",
        )

    def final(self, summary: ImportSummary) -> None:
        self.stop()
        if self.format == "json":
            self._write(json.dumps({"time": _now(), "event": "final", **summary_record(summary)}))
            return
        for line in summary_lines(summary):
            self._write(line)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class _Bar:
    """One symbol's progress: whole files, plus the fractions of the ones loading."""

    def __init__(self) -> None:
        self.task: TaskID | None = None
        self.total = self.done = self.rows = 0
        self.bytes = 0
        #: Files loading: name → (rows, CSV bytes, CSV size).
        self.loading: dict[str, tuple[int, int, int]] = {}
        self._began: float | None = None

    def current(self, p: FileProgress) -> None:
        if self._began is None:
            self._began = time.monotonic()
        self.loading[p.file] = (p.rows, p.csv_bytes, p.csv_total)

    def finished(self, name: str, rows: int) -> None:
        self.done += 1
        self.rows += rows
        self.bytes += self.loading.pop(name, (0, 0, 0))[1]

    @property
    def fraction(self) -> float:
        return sum(done / total for _, done, total in self.loading.values() if total)

    @property
    def current_rows(self) -> int:
        return sum(rows for rows, _, _ in self.loading.values())

    def rate(self) -> float:
        if self._began is None:
            return 0.0
        moved = self.bytes + sum(done for _, done, _ in self.loading.values())
        return moved / 1e6 / max(time.monotonic() - self._began, 1e-3)


def summary_record(summary: ImportSummary) -> dict[str, Any]:
    """The summary as JSON-ready data."""
    return {
        "ok": summary.ok,
        "stopped": summary.stopped,
        "seconds": round(summary.elapsed, 3),
        "symbols": [
            {
                "symbol": s.symbol,
                "files": _counts(s.files),
                "rows": sum(f.rows for f in s.files if f.status.value == "loaded"),
                "rest_trades": s.rest_trades,
                "last_trade_id": s.last_trade_id,
                "gaps": [
                    {"first_id": g.first_id, "last_id": g.last_id, "state": g.state} for g in s.gaps
                ],
            }
            for s in summary.symbols
        ],
        "failed": [
            {"file": f.name, "status": f.status.value, "reason": f.reason} for f in summary.failed
        ],
        "not_loaded": [f.name for f in summary.not_loaded],
    }


def summary_lines(summary: ImportSummary) -> list[str]:
    lines = []
    for s in summary.symbols:
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in _counts(s.files).items())
        rows = sum(f.rows for f in s.files if f.status.value == "loaded")
        rest = f", {s.rest_trades:,} from REST" if s.rest_trades else ""
        gaps = f", {len(s.gaps)} gaps recorded" if s.gaps else ""
        last = "none stored" if s.last_trade_id is None else s.last_trade_id
        noun = s.kind.label
        lines.append(
            f"{s.symbol}: {counts or 'no files'}; {rows:,} {noun}s loaded{rest}{gaps}; "
            f"last {noun} id {last}"
        )
    lines.extend(f"not imported: {f.name}: {f.reason}" for f in summary.failed)
    if summary.not_loaded:
        lines.append(
            f"not loaded (stopped): {_names(summary.not_loaded)}; the next run imports "
            f"{'it' if len(summary.not_loaded) == 1 else 'them'}"
        )
    state = "stopped" if summary.stopped else ("done" if summary.ok else "incomplete")
    lines.append(f"import {state} in {summary.elapsed:.1f} s")
    return lines


#: Files a summary line names before it says "and N more".
_NAMES_SHOWN = 3


def _names(files: tuple[FileResult, ...]) -> str:
    shown = ", ".join(f.name for f in files[:_NAMES_SHOWN])
    more = len(files) - _NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _counts(files: tuple[FileResult, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in files:
        counts[f.status.value] = counts.get(f.status.value, 0) + 1
    return counts


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
