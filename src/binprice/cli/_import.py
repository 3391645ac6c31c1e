"""`binprice import`: past trades from Binance's public archives → the database.

Parse → `history.import_history` → render: a Rich progress bar per symbol on a terminal (files,
trades, MB/s, ETA), one line per file elsewhere (`plain`, or `json` for log shippers). The CLI
owns the signals: the first Ctrl+C stops after the chunk being loaded is committed (the next run
resumes there), a second one aborts.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from binprice.cli._app import app, settings_from

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from binprice.history import FileProgress, ImportEvent, ImportOptions, ImportSummary

FORMATS = ("auto", "live", "plain", "json")
_DATE_HELP = "a date (UTC day), or any time binprice reads (its day is taken)"


@app.command("import")
def import_(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Symbols to import (e.g. BTCUSDT ETHUSDT) and/or zip files downloaded by hand.",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--start", help=f"First day to import: {_DATE_HELP}.", show_default=False),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end",
            help=f"Day after the last one (exclusive): {_DATE_HELP}.",
            show_default="today (UTC)",
        ),
    ] = None,
    archive_url: Annotated[
        str | None,
        typer.Option(
            "--archive-url",
            envvar="BINPRICE_ARCHIVE_URL",
            help="The archive service.",
            show_default="https://data.binance.vision",
        ),
    ] = None,
    from_dirs: Annotated[
        list[str] | None,
        typer.Option(
            "--from",
            help="A folder of zips instead of the archive service: its layout "
            "(data/spot/...) or flat, each zip with its .CHECKSUM. Repeatable.",
            show_default=False,
        ),
    ] = None,
    rest_tail: Annotated[
        bool,
        typer.Option(
            "--rest-tail",
            help="Fetch what the archive lacks from REST historicalTrades: the "
            "days it has not published yet (it lags about a day) and holes in its files.",
        ),
    ] = False,
    rest_url: Annotated[
        str | None,
        typer.Option(
            "--rest-url",
            envvar="BINPRICE_REST_URL",
            help="REST base URL for --rest-tail.",
            show_default="https://api.binance.com",
        ),
    ] = None,
    downloads: Annotated[
        int, typer.Option("--downloads", help="Files downloaded ahead of the one loading.", min=1)
    ] = 2,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="auto (progress bars on a terminal, plain lines elsewhere), live, plain or json.",
        ),
    ] = "auto",
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only problems and the summary.")
    ] = False,
    commit_every: Annotated[
        int, typer.Option("--commit-every", hidden=True, min=1, help="Trades per commit.")
    ] = 1_000_000,
) -> None:
    """Import every trade of SYMBOLS from --start to --end from Binance's public archives
    (verified against their SHA-256; re-runs skip what is done, interrupted runs resume)."""
    from binprice import db, migrations
    from binprice.errors import ConfigError, ImportIncompleteError
    from binprice.history import DEFAULT_ARCHIVE_URL, ImportOptions
    from binprice.ingest.config import DEFAULT_REST_URL

    if log_format not in FORMATS:
        raise ConfigError(
            f"unknown --log-format {log_format!r}; choose one of {', '.join(FORMATS)}"
        )
    settings = settings_from(ctx)
    names = targets or []
    files = tuple(Path(t) for t in names if t.lower().endswith(".zip") or "/" in t)
    options = ImportOptions(
        symbols=tuple(t for t in names if Path(t) not in files),
        start=_day(start, "--start"),
        end=_day(end, "--end"),
        archive_url=archive_url or DEFAULT_ARCHIVE_URL,
        folders=tuple(Path(d) for d in from_dirs or ()),
        files=files,
        spool_dir=settings.data_dir / "downloads",
        rest_url=rest_url or DEFAULT_REST_URL,
        rest_tail=rest_tail,
        downloads=downloads,
        commit_rows=commit_every,
    )
    view = ImportView(log_format, quiet=quiet)
    url = db.resolve_url(settings)
    with db.connect(url) as conn:
        current = db.current_revision(conn)
    if current != migrations.SCHEMA_HEAD:
        migrations.upgrade(url)
        view.line(f"migrated the database at {db.describe(url)} to the newest schema")
    summary = _run(options, url, view)
    view.final(summary)
    if not summary.ok:
        failed = summary.failed
        raise ImportIncompleteError(
            f"{len(failed)} file{'s' if len(failed) > 1 else ''} not imported (listed above); "
            "the others are stored, and a re-run retries only what is missing"
        )


def _day(text: str | None, flag: str) -> date | None:
    from binprice.errors import UsageError
    from binprice.timespec import parse_timestamp

    if text is None:
        return None
    try:
        return parse_timestamp(text).astimezone(UTC).date()
    except UsageError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _run(options: ImportOptions, url: str, view: ImportView) -> ImportSummary:
    import asyncio
    import signal

    from binprice.errors import AbortedError
    from binprice.history import import_history

    async def main() -> ImportSummary:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()

        def on_signal() -> None:
            if not stop.is_set():
                view.line("stopping after the chunk being loaded is committed (again to abort)")
                stop.set()
            elif task is not None:
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        view.start()
        try:
            return await import_history(
                options, url, stop=stop, on_event=view.event, on_progress=view.progress
            )
        finally:
            view.stop()

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise AbortedError(
            "aborted; the next `binprice import` resumes where this stopped"
        ) from None


class ImportView:
    """Owns the output of one run (stderr)."""

    def __init__(self, fmt: str, *, quiet: bool, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
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
                TextColumn("{task.fields[trades]:>14} trades"),
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
            self._write(json.dumps({"time": _now(), **(record or {"event": "message"}),
                                    "message": message}))  # fmt: skip
        elif self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            self._write(f"{_now()} {message}")

    def event(self, event: ImportEvent) -> None:
        from binprice.history import EventKind, Severity

        bar = self._bar(event.symbol)
        if event.kind is EventKind.PLANNED or event.kind is EventKind.DAILY_INSTEAD:
            bar.total += event.files
        elif event.result is not None:
            bar.finished(event.result.rows if event.kind is EventKind.LOADED else 0)
        elif event.kind is EventKind.DONE:
            bar.done = bar.total
        self._draw(event.symbol)
        if self.quiet and event.severity < Severity.WARNING:
            return
        record: dict[str, Any] = {"event": event.kind.value, "symbol": event.symbol}
        if event.file is not None:
            record["file"] = event.file
        if event.result is not None:
            r = event.result
            record |= {"status": r.status.value, "rows": r.rows, "inserted": r.inserted,
                       "first_id": r.first_id, "last_id": r.last_id,
                       "seconds": round(r.seconds, 3)}  # fmt: skip
        self.line(event.message, record)

    def progress(self, p: FileProgress) -> None:
        bar = self._bar(p.symbol)
        bar.current(p.rows, p.csv_bytes, p.csv_total)
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
    """One symbol's progress: whole files, plus the fraction of the one loading."""

    def __init__(self) -> None:
        self.task: TaskID | None = None
        self.total = self.done = self.rows = self.current_rows = 0
        self.fraction = 0.0
        self.bytes = 0
        self._file_bytes = 0
        self._began: float | None = None

    def current(self, rows: int, csv_bytes: int, csv_total: int) -> None:
        if self._began is None:
            self._began = time.monotonic()
        self.current_rows, self._file_bytes = rows, csv_bytes
        self.fraction = csv_bytes / csv_total if csv_total else 0.0

    def finished(self, rows: int) -> None:
        self.done += 1
        self.rows += rows
        self.bytes += self._file_bytes
        self.current_rows = self._file_bytes = 0
        self.fraction = 0.0

    def rate(self) -> float:
        if self._began is None:
            return 0.0
        return (self.bytes + self._file_bytes) / 1e6 / max(time.monotonic() - self._began, 1e-3)


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
    }


def summary_lines(summary: ImportSummary) -> list[str]:
    lines = []
    for s in summary.symbols:
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in _counts(s.files).items())
        rows = sum(f.rows for f in s.files if f.status.value == "loaded")
        rest = f", {s.rest_trades:,} from REST" if s.rest_trades else ""
        gaps = f", {len(s.gaps)} gaps recorded" if s.gaps else ""
        last = "none stored" if s.last_trade_id is None else s.last_trade_id
        lines.append(
            f"{s.symbol}: {counts or 'no files'}; {rows:,} trades loaded{rest}{gaps}; "
            f"last trade id {last}"
        )
    lines.extend(f"not imported: {f.name}: {f.reason}" for f in summary.failed)
    state = "stopped" if summary.stopped else ("done" if summary.ok else "incomplete")
    lines.append(f"import {state} in {summary.elapsed:.1f} s")
    return lines


def _counts(files: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in files:
        counts[f.status.value] = counts.get(f.status.value, 0) + 1
    return counts


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
