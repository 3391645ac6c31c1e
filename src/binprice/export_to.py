"""Where an export goes: a stream, a file (written whole or not at all), or Binance's daily files.

`export_to` is `Store.export` (and so `binprice export`): it first reads the window's count per
symbol from the rollup (the symbols without trades, and the total a progress bar needs, are
known before anything is written), hands that plan to the caller, then writes:

- a stream (`IO[bytes]`): every format, one symbol for ``binance``;
- a path: the file is written beside the target as ``<name>.part`` and renamed when complete,
  so a failed export (a missing extra, a lost connection, Ctrl+C) leaves neither an empty nor
  a half-written file; ``binance`` to a ``.csv`` or ``.zip`` name writes that one file;
- a directory for ``binance`` (a path that is one, ends with a separator, or several symbols):
  Binance's daily ``<SYM>-trades-YYYY-MM-DD.zip`` with ``.CHECKSUM``, for ``import --from``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from binprice._fs import written_in_place
from binprice.db.export import Progress
from binprice.db.queries import price_range
from binprice.errors import ExportError, NotFoundError, UsageError
from binprice.export import Format, write_trades
from binprice.export_binance import write_binance_archive, write_binance_file
from binprice.kinds import TradeKind
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols
from binprice.timespec import format_timestamp

Connection = psycopg.Connection[Any]
Target = IO[bytes] | str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What an export will write, known before its first row: the symbols with trades in the
    window (in the order asked), those without, and the rows to come."""

    symbols: tuple[str, ...]
    missing: tuple[str, ...]
    trades: int


def export_to(
    conn: Connection,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    fmt: Format,
    *,
    out: Target,
    progress: Progress | None = None,
    on_plan: Callable[[ExportPlan], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = TradeKind.TRADES,
) -> int:
    """Write every trade of the window to `out`; return how many. Symbols without trades are
    left out (`on_plan` names them); none with any is NotFoundError. `on_file` gets each of
    Binance's daily files written to a directory. `kind`: aggregate trades (`export_agg`)."""
    wanted = list(normalize_symbols(symbols))
    stream = None if isinstance(out, str | os.PathLike) else out
    text = "" if stream is not None else os.fspath(out)  # type: ignore[arg-type]
    target = None if stream is not None else Path(text)
    if kind is TradeKind.AGG_TRADES:
        to = _Sink(stream, target, on_plan, progress)
        return _export_aggs(conn, wanted, (start, end), fmt, to, market=market)
    many_binance = fmt is Format.BINANCE and len(wanted) > 1
    to_directory = (
        fmt is Format.BINANCE
        and target is not None
        and (target.is_dir() or text.endswith(("/", "\\")) or many_binance)
    )
    if many_binance and not to_directory:
        raise UsageError("--format binance with several symbols needs --output DIRECTORY")
    if stream is not None and fmt is Format.PARQUET and stream.isatty():
        raise UsageError("refusing to write Parquet to a terminal: give --output FILE")
    plan = _plan(conn, wanted, (start, end), market)
    if on_plan is not None:
        on_plan(plan)
    found = list(plan.symbols)
    if to_directory and target is not None:
        written = write_binance_archive(
            conn, found, start, end, target, progress=progress, market=market
        )
        for path in written:
            if on_file is not None:
                on_file(path)
        return plan.trades
    if fmt is Format.BINANCE and target is not None:
        return write_binance_file(
            conn, found[0], start, end, target, progress=progress, market=market
        )
    with _open(stream, target) as sink:
        return write_trades(
            conn, found, start, end, fmt, out=sink, progress=progress, market=market
        )


@dataclass(frozen=True, slots=True)
class _Sink:
    """Where an export of aggregate trades goes, and who hears of it."""

    stream: IO[bytes] | None
    target: Path | None
    on_plan: Callable[[ExportPlan], None] | None
    progress: Progress | None


def _export_aggs(
    conn: Connection,
    wanted: list[str],
    window: tuple[datetime, datetime],
    fmt: Format,
    sink: _Sink,
    *,
    market: Market,
) -> int:
    """Aggregate trades to a stream or a file (no directory of daily zips)."""
    from binprice.db.aggtrades import agg_counts
    from binprice.export_agg import write_aggs

    stream, target, on_plan, progress = sink.stream, sink.target, sink.on_plan, sink.progress
    if target is not None and (target.is_dir() or target.suffix.lower() == ".zip"):
        raise UsageError("--kind aggTrades writes one file or stdout: give --output FILE.csv")
    counts = agg_counts(conn, *window, wanted, market=market)
    missing = tuple(symbol for symbol in wanted if symbol not in counts)
    if not counts:
        asked = f"from {format_timestamp(window[0])} to {format_timestamp(window[1])}"
        raise NotFoundError(f"no aggregate trades {asked} for {', '.join(missing)}")
    plan = ExportPlan(tuple(counts), missing, sum(counts.values()))
    if on_plan is not None:
        on_plan(plan)
    with _open(stream, target) as out:
        return write_aggs(
            conn, plan.symbols, *window, fmt, out=out, progress=progress, market=market
        )


def _plan(
    conn: Connection, wanted: list[str], window: tuple[datetime, datetime], market: Market
) -> ExportPlan:
    # The rollup counts the window's trades in milliseconds: no pass over the trades.
    start, end = window
    summaries = price_range(conn, start, end, wanted, market=market)
    have = {summary.symbol for summary in summaries}
    missing = tuple(symbol for symbol in wanted if symbol not in have)
    if not summaries:
        asked = f"from {format_timestamp(start)} to {format_timestamp(end)}"
        raise NotFoundError(f"no trades {asked} for {', '.join(missing)}")
    total = sum(summary.trades for summary in summaries)
    return ExportPlan(tuple(summary.symbol for summary in summaries), missing, total)


@contextmanager
def _open(stream: IO[bytes] | None, target: Path | None) -> Iterator[IO[bytes]]:
    if stream is not None or target is None:
        assert stream is not None
        yield stream
        stream.flush()
        return
    if written_in_place(target):
        try:
            opened = target.open("wb")
        except OSError as exc:
            raise ExportError(f"cannot write {target}: {exc.strerror}") from None
        with opened:
            yield opened
        return
    part = target.with_name(target.name + ".part")
    try:
        opened = part.open("wb")
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with opened:
            yield opened
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
