"""Where `binprice export` writes (a file, stdout or Binance's daily files) and its progress bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from binprice.cli._app import err
from binprice.db.queries import price_range
from binprice.errors import ExportError, NotFoundError, UsageError
from binprice.export import Format, write_trades
from binprice.export_binance import write_binance_archive, write_binance_file
from binprice.symbols import normalize_symbols
from binprice.timespec import format_timestamp

STDOUT = "-"


def run_export(
    conn: psycopg.Connection[Any],
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    fmt: Format,
    output: str,
) -> None:
    """Export, naming symbols without trades on stderr; nothing at all is NotFoundError."""
    wanted = list(normalize_symbols(symbols))
    target = None if output == STDOUT else Path(output)
    many_binance = fmt is Format.BINANCE and len(wanted) > 1
    to_directory = fmt is Format.BINANCE and target is not None and (
        target.is_dir() or output.endswith(("/", "\\")) or many_binance
    )  # fmt: skip
    if many_binance and not to_directory:
        raise UsageError("--format binance with several symbols needs --output DIRECTORY")
    if target is None and fmt is Format.PARQUET and sys.stdout.isatty():
        raise UsageError("refusing to write Parquet to a terminal: give --output FILE")
    # The rollup counts the window's trades in milliseconds: the progress bar's total, and the
    # symbols without trades are known before anything is written.
    summaries = price_range(conn, start, end, wanted)
    have = {summary.symbol for summary in summaries}
    missing = [symbol for symbol in wanted if symbol not in have]
    if not summaries:
        window = f"from {format_timestamp(start)} to {format_timestamp(end)}"
        raise NotFoundError(f"no trades {window} for {', '.join(missing)}")
    if missing:
        err(f"no trades for: {', '.join(missing)}")
    found = [summary.symbol for summary in summaries]
    total = sum(summary.trades for summary in summaries)
    with _progress(total) as progress:
        if to_directory and target is not None:
            written = write_binance_archive(conn, found, start, end, target, progress=progress)
            err(f"wrote {len(written)} files to {target}")
        elif fmt is Format.BINANCE and target is not None:
            write_binance_file(conn, found[0], start, end, target, progress=progress)
        else:
            with _open(target) as out:
                write_trades(conn, found, start, end, fmt, out, progress=progress)


@contextmanager
def _open(target: Path | None) -> Iterator[IO[bytes]]:
    if target is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    # Written beside the target and renamed when complete: a failed export (a missing extra,
    # a lost connection, Ctrl+C) leaves neither an empty nor a half-written file.
    part = target.with_name(target.name + ".part")
    try:
        stream = part.open("wb")
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with stream:
            yield stream
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A Rich progress bar on stderr when it is a terminal; no callback otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("export"), BarColumn(), MofNCompleteColumn(), TextColumn("trades"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("export", total=total or None)

        def advance(rows: int) -> None:
            bar.update(task, completed=rows)

        yield advance
