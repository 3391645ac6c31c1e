"""`binprice candles`, `chart`, `export` and `watch`: looking at the data.

Each command parses its options, calls one library function (binprice.db.candles, binprice.export,
binprice.watch) and renders; plotext, pyarrow, matplotlib and Rich are imported inside the
commands that need them, so registering these commands costs `binprice latest` nothing (and
`main` only imports this module when one of them runs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from binprice.cli._app import (
    DURATION_HELP,
    TEXT,
    Csv,
    DatabaseUrl,
    DurationMeta,
    End,
    Last,
    RequiredSymbols,
    Start,
    command_app,
    err,
    store_from,
)
from binprice.cli._queries import check_format, emit

INTERVAL_NAMES = "1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M"
INTERVAL_HELP = (
    f"Kline interval, Binance's names: {INTERVAL_NAMES} (UTC; 1w opens Monday 00:00, 1M on "
    "the 1st, 3d on epoch-aligned days, as Binance's)."
)
FORMAT_HELP = (
    "csv (header row), ndjson, parquet (needs pyarrow; exact decimals) or binance (Binance's "
    "archive CSV: no header, id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch; time in ms "
    "before 2025-01-01, us after)."
)
OUTPUT_HELP = (
    "A file, or - for stdout. binance: a .csv or .zip file for one symbol, or a directory (made "
    "if needed; required for several symbols) that gets Binance's daily files "
    "<SYM>-trades-YYYY-MM-DD.zip with .CHECKSUM, for `import --from`."
)

commands = command_app()


@commands.command()
def candles(
    ctx: typer.Context,
    symbols: RequiredSymbols,
    interval: Annotated[str, typer.Option("--interval", "-i", metavar=TEXT, help=INTERVAL_HELP)],
    last: Last = None,
    start: Start = None,
    end: End = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a JSON array: one object per candle, stable keys."),
    ] = False,
    as_csv: Csv = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Candles (klines) in [start, end): open/close times, OHLC, volume, quote volume, trades,
    VWAP. An interval without trades has no candle; the first and last candle hold only the
    window's part of their interval."""
    from binprice.db.candles import parse_interval
    from binprice.timespec import format_timestamp, parse_window

    check_format(as_json, as_csv)
    chosen = parse_interval(interval)
    window_start, window_end = parse_window(last=last, start=start, end=end)
    with store_from(ctx, database_url) as store:
        found = store.candles(symbols, chosen, window_start, window_end)
    window = f"from {format_timestamp(window_start)} to {format_timestamp(window_end)}"
    emit(symbols, found, f"no trades {window}", as_json=as_json, as_csv=as_csv)


@commands.command()
def chart(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(metavar="SYMBOL", help="The symbol, any case.")],
    last: Last = None,
    start: Start = None,
    end: End = None,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval", "-i", metavar=TEXT, help=f"{INTERVAL_HELP} Default: fits the width."
        ),
    ] = None,
    png: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Also write the chart to this PNG (needs matplotlib)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A candlestick chart of the window at the terminal's size (price axis, UTC time axis);
    a window of one interval or less is drawn as a line of its trades."""
    import shutil

    from binprice.cli._chart import chart_png, chart_text, max_candles
    from binprice.cli._chart_data import chart_data
    from binprice.timespec import parse_window

    window_start, window_end = parse_window(last=last, start=start, end=end)
    size = shutil.get_terminal_size()
    with store_from(ctx, database_url) as store:
        title, data, chosen = chart_data(
            store.connection, symbol, window_start, window_end, interval, max_candles(size.columns)
        )
    if png is not None:
        chart_png(title, data, png, chosen)
        err(f"wrote {png}")
    text = chart_text(
        title, data, start=window_start, end=window_end, interval=chosen,
        width=size.columns, height=size.lines - 2, color=sys.stdout.isatty(),
    )  # fmt: skip
    typer.echo(text)


@commands.command()
def export(
    ctx: typer.Context,
    symbols: RequiredSymbols,
    fmt: Annotated[str, typer.Option("--format", "-f", metavar=TEXT, help=FORMAT_HELP)],
    last: Last = None,
    start: Start = None,
    end: End = None,
    output: Annotated[str, typer.Option("--output", "-o", metavar="PATH", help=OUTPUT_HELP)] = "-",
    database_url: DatabaseUrl = None,
) -> None:
    """Every trade of the window, streamed in constant memory (a progress bar on stderr when it
    is a terminal): symbol, trade_id, price, quantity, timestamp, is_buyer_maker."""
    from binprice.cli._export_run import run_export
    from binprice.export import parse_format
    from binprice.timespec import parse_window

    chosen = parse_format(fmt)
    window_start, window_end = parse_window(last=last, start=start, end=end)
    with store_from(ctx, database_url) as store:
        run_export(store.connection, symbols, window_start, window_end, chosen, output)


@commands.command()
def watch(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SYMBOL]...",
            help="Symbols, any case. Default: every recorded symbol.",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        str,
        typer.Option(metavar=DurationMeta, help=f"Change is measured over this: {DURATION_HELP}"),
    ] = "1h",
    every: Annotated[
        str,
        typer.Option(
            metavar=DurationMeta, help=f"Time between updates, at least 100ms: {DURATION_HELP}"
        ),
    ] = "1s",
    count: Annotated[
        int | None, typer.Option("--count", "-n", metavar="N", help="Stop after this many updates.")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A live view of the last price, change over --window, trades/s and the last 30 minutes
    (sparkline), polled from the database next to a running ingest. Ctrl+C stops it. Off a
    terminal: one line per update."""
    from binprice.cli._watch_run import run_watch
    from binprice.errors import UsageError
    from binprice.timespec import format_duration, parse_duration
    from binprice.watch import MIN_EVERY

    change_window, period = parse_duration(window), parse_duration(every)
    if period < MIN_EVERY:
        raise UsageError(
            f"--every {every.strip()} is too short: at least {format_duration(MIN_EVERY)}"
        )
    with store_from(ctx, database_url) as store:
        run_watch(store.connection, symbols or (), change_window, period, count)
