"""`binprice candles`, `chart`, `export` and `watch`: looking at the data.

Each command parses its options, makes one `Store` call (candles, chart, export, watch) and
hands the result to its view (`views.queries`, `views.chart`, `views.export`, `views.watch`);
the views, plotext, pyarrow, matplotlib and Rich are imported inside the commands that need
them, so registering these commands costs `binprice latest` nothing (and
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
    KindOption,
    Last,
    MarketOption,
    RequiredSymbols,
    Start,
    command_app,
    err,
    market_from,
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
#: `--output -`: standard output.
STDOUT = "-"


#: How many candles the window holds when none is given (the library's `DEFAULT_CANDLES`).
DEFAULT_CANDLES_SHOWN = 60


@commands.command()
def candles(
    ctx: typer.Context,
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="SYMBOL... [INTERVAL]",
            help="Symbols, any case, then the interval: `candles BTCUSDT 1m` (or give -i).",
            show_default=False,
        ),
    ],
    interval: Annotated[
        str | None, typer.Option("--interval", "-i", metavar=TEXT, help=INTERVAL_HELP)
    ] = None,
    last: Last = None,
    start: Start = None,
    end: End = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a JSON array: one object per candle, stable keys."),
    ] = False,
    as_csv: Csv = False,
    market: MarketOption = None,
    kind: KindOption = "trades",
    database_url: DatabaseUrl = None,
) -> None:
    """Candles (klines) in [start, end): open/close times, OHLC, volume, quote volume, trades,
    VWAP. Without --last/--start, the last 60 candles up to --end (default now). An interval
    without trades has no candle; the first and last candle hold only the window's part of
    their interval."""
    from binprice.timespec import format_timestamp, parse_timestamp, parse_window

    check_format(as_json, as_csv)
    symbols, chosen = symbols_and_interval(args, interval)
    if last is None and start is None:
        window_start, window_end = None, parse_timestamp(end or "now")
        up_to = format_timestamp(window_end)
        window = f"in the last {DEFAULT_CANDLES_SHOWN} {chosen} candles up to {up_to}"
    else:
        window_start, window_end = parse_window(last=last, start=start, end=end)
        window = f"from {format_timestamp(window_start)} to {format_timestamp(window_end)}"
    with store_from(ctx, database_url) as store:
        found = store.candles(
            symbols, chosen, window_start, window_end, market=market_from(market), kind=kind
        )
    emit(symbols, found, f"no {{records}} {window}", kind=kind, as_json=as_json, as_csv=as_csv)


def symbols_and_interval(args: list[str], option: str | None) -> tuple[list[str], str]:
    """`candles BTCUSDT ETHUSDT 1m`: the symbols, and the interval given among them (a name
    of Binance's intervals, which no symbol is) or with -i, exactly once."""
    from binprice.errors import UsageError

    names = INTERVAL_NAMES.split()
    given = [a for a in args if a.strip() in names]
    symbols = [a for a in args if a.strip() not in names]
    if option is not None:
        given.append(option)
    if len(given) > 1:
        raise UsageError(f"give the interval once, not {' and '.join(given)}")
    if not given:
        raise UsageError(
            f"give an interval: `binprice candles BTCUSDT 1m` (one of {INTERVAL_NAMES})"
        )
    if not symbols:
        raise UsageError("give a symbol: `binprice candles BTCUSDT 1m`")
    return symbols, given[0]


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
    market: MarketOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A candlestick chart of the window at the terminal's size (price axis, UTC time axis);
    a window of one interval or less is drawn as a line of its trades."""
    import shutil

    from binprice.cli.views.chart import chart_png, chart_text, max_candles
    from binprice.timespec import parse_window

    window_start, window_end = parse_window(last=last, start=start, end=end)
    size = shutil.get_terminal_size()
    with store_from(ctx, database_url) as store:
        title, data, chosen = store.chart(
            symbol,
            window_start,
            window_end,
            interval=interval,
            max_candles=max_candles(size.columns),
            market=market_from(market),
        )
    if png is not None:
        chart_png(title, data, png, chosen)
        err(f"wrote {png}")
    text = chart_text(
        title,
        data,
        start=window_start,
        end=window_end,
        interval=chosen,
        width=size.columns,
        height=size.lines - 2,
        color=sys.stdout.isatty(),
    )
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
    market: MarketOption = None,
    kind: KindOption = "trades",
    database_url: DatabaseUrl = None,
) -> None:
    """Every trade of the window, streamed in constant memory (a progress bar on stderr when it
    is a terminal): symbol, trade_id, price, quantity, timestamp, is_buyer_maker. With --kind
    aggTrades the aggregate trades: symbol, agg_trade_id, price, quantity, first_trade_id,
    last_trade_id, transact_time, is_buyer_maker."""
    from binprice.cli.views.export import ExportView
    from binprice.timespec import parse_window

    window_start, window_end = parse_window(last=last, start=start, end=end)
    out = sys.stdout.buffer if output == STDOUT else output
    with store_from(ctx, database_url) as store, ExportView(sys.stderr.isatty()) as view:
        store.export(
            symbols,
            window_start,
            window_end,
            fmt,
            out,
            progress=view.progress,
            on_plan=view.plan,
            on_file=view.file,
            market=market_from(market),
            kind=kind,
        )
    view.done(output)


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
    market: MarketOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A live view of the last price, change over --window, trades/s and the last 30 minutes
    (sparkline), polled from the database next to a running ingest. Ctrl+C stops it. Off a
    terminal: one line per update."""
    from binprice.cli.views.watch import show

    store = store_from(ctx, database_url)
    with store:
        chosen = market_from(market)
        show(store.watch(symbols, window=window, every=every, count=count, market=chosen))
