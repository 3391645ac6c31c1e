"""Stored trades written as Binance's public-archive trade files, so `binprice import` reads them.

The layout of ``data/spot/daily/trades/<SYM>/<SYM>-trades-YYYY-MM-DD.zip`` on Binance's archive:
a zip holding ``<SYM>-trades-YYYY-MM-DD.csv``, CSV without a header, columns
``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch``, booleans ``True``/``False``, ``time``
in milliseconds before 2025-01-01 and in microseconds from then on (Binance switched its spot
files on that day; our times are milliseconds, so a microsecond time ends in ``000``), and next
to each zip a ``.CHECKSUM`` file (``<sha256>  <name>``).

- ``price`` and ``qty`` are written exactly as stored (the stream's strings, e.g.
  ``7599.00000000``), so export then import gives back the same text.
- ``quoteQty`` is ``price * qty`` rounded to 8 decimals, as Binance prints it; it is derived
  and informational (the table does not store it).
- ``isBestMatch`` is not stored; Binance spot trades are always best matches: ``True``.

One file holds one symbol. :func:`write_binance_archive` writes one zip per symbol and UTC day
of the window (the file names Binance uses, partial days at the window's ends included), each
written to a ``.part`` file and renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psycopg

from binprice._fs import sha256_file, written_in_place
from binprice.compressed.texts import BinanceLines
from binprice.db.blockreads import compressed_catalog, to_ms
from binprice.db.candles import as_utc
from binprice.db.export import Progress, ProgressCounter, binance_select, copy_out, window_params
from binprice.export_blocks import binance_lines, write_texts
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import normalize_symbols

__all__ = [
    "MICROSECONDS_FROM",
    "archive_name",
    "write_binance_archive",
    "write_binance_csv",
    "write_binance_file",
]

Connection = psycopg.Connection[Any]

#: From this day on Binance's spot archive files give `time` in microseconds.
MICROSECONDS_FROM = datetime.fromisoformat("2025-01-01T00:00:00+00:00")
DAY = timedelta(days=1)
QUOTE_DECIMALS = 8
_BINANCE_SELECT = binance_select(MICROSECONDS_FROM, QUOTE_DECIMALS)
_BINANCE_LINES = binance_lines(MICROSECONDS_FROM, QUOTE_DECIMALS)


def write_binance_csv(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    out: IO[bytes],
    *,
    progress: Progress | None = None,
    market: Market = DEFAULT_MARKET,
) -> int:
    """Write one symbol's trades in ``[start, end)`` as Binance's CSV; return the row count."""
    (wanted,) = normalize_symbols([symbol])
    counter = ProgressCounter(progress)
    params = window_params(wanted, start, end, market)
    if compressed_catalog(conn, market).overlaps(params["start"], params["end"]):
        write_texts(
            conn,
            wanted,
            params["start"],
            params["end"],
            lines=_BINANCE_LINES,
            blocks=BinanceLines(to_ms(MICROSECONDS_FROM), QUOTE_DECIMALS),
            rows=(_BINANCE_SELECT, "(FORMAT csv)"),
            out=out,
            counter=counter,
            market=market,
        )
    else:
        copy_out(conn, _BINANCE_SELECT, "(FORMAT csv)", params, out, counter=counter)
    return counter.finish()


def archive_name(symbol: str, day: datetime) -> str:
    """Binance's daily file name without extension: ``BTCUSDT-trades-2026-05-28``."""
    return f"{symbol}-trades-{day:%Y-%m-%d}"


def write_binance_file(
    conn: Connection,
    symbol: str,
    start: datetime,
    end: datetime,
    path: Path,
    *,
    progress: Progress | None = None,
    market: Market = DEFAULT_MARKET,
) -> int:
    """Write ``path``: a plain CSV, or for a ``.zip`` name a zip holding ``<stem>.csv`` and a
    ``<name>.CHECKSUM`` beside it. Returns the row count; nothing is left when it fails. A
    device or a pipe (`/dev/null`) gets the CSV straight, with no checksum beside it."""
    if written_in_place(path):
        with path.open("wb") as raw:
            return write_binance_csv(conn, symbol, start, end, raw, progress=progress)
    part = path.with_name(path.name + ".part")
    try:
        with part.open("wb") as raw:
            if path.suffix.lower() != ".zip":
                rows = write_binance_csv(
                    conn, symbol, start, end, raw, progress=progress, market=market
                )
            else:
                with (
                    zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive,
                    archive.open(f"{path.stem}.csv", "w", force_zip64=True) as member,
                ):
                    rows = write_binance_csv(
                        conn, symbol, start, end, member, progress=progress, market=market
                    )
        if path.suffix.lower() == ".zip":
            checksum = f"{sha256_file(part)}  {path.name}\n"
            path.with_name(path.name + ".CHECKSUM").write_text(checksum)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return rows


def write_binance_archive(
    conn: Connection,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    directory: Path,
    *,
    progress: Progress | None = None,
    market: Market = DEFAULT_MARKET,
) -> list[Path]:
    """One ``<SYM>-trades-YYYY-MM-DD.zip`` (and ``.CHECKSUM``) per symbol and UTC day of the
    window that has trades, in ``directory`` (created if needed); returns the zips written."""
    start, end = as_utc(start), as_utc(end)
    window_params("", start, end)  # refuses an empty window before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    done = 0

    def report(rows: int) -> None:
        if progress is not None:
            progress(done + rows)

    for symbol in normalize_symbols(symbols):
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            path = directory / f"{archive_name(symbol, day)}.zip"
            window = (max(start, day), min(end, day + DAY))
            rows = write_binance_file(conn, symbol, *window, path, progress=report, market=market)
            if rows:
                written.append(path)
                done += rows
            else:  # a day without trades has no file, as a symbol not yet listed has none
                path.unlink()
                path.with_name(path.name + ".CHECKSUM").unlink()
            day += DAY
    return written
