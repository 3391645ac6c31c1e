"""`binprice ingest`: the options → `IngestOptions` → one `Store.ingest_async` run, under the
CLI's signals, shown by the monitor (`views.ingest`)."""

from __future__ import annotations

from typing import Annotated

import typer

from binprice.cli._app import (
    ARCHIVE_URL_SHOWN,
    DURATION_HELP,
    ApiKeyOption,
    DatabaseUrl,
    DurationMeta,
    Exchange,
    MarketOption,
    RestUrl,
    command_app,
    errors_written_by,
    market_from,
    store_from,
    url_option,
)

ALL_HELP = (
    "Every symbol the exchange lists as TRADING, re-read hourly: new listings are added and "
    "halted or delisted ones dropped while the run goes on."
)
BACKFILL_MAX_HELP = (
    "Most trade ids fetched from REST per gap (the downtime since the last run included); the "
    "older part of a larger gap is recorded as skipped."
)
STREAM_HELP = (
    "What to capture: trade (every trade, into trades) or aggTrade (aggregate trades, into "
    "agg_trades, complete by aggregate id: gaps --kind aggTrades)."
)
REDUNDANCY_HELP = (
    "Independent connections per group of streams (1-3); each trade is taken from whichever "
    "delivers it first, so a dropped connection costs no REST call."
)
QUIET_PERIOD_HELP = (
    "Ask the exchange for the newest trade id of a symbol quiet for this long (then ever less "
    "often while it stays quiet)."
)
SINCE_HELP = (
    "First import every trade since this UTC day from Binance's public archives (verified; the "
    "days not published yet from REST), then stream: one command from an empty database to "
    "live. With --stream aggTrade: the aggTrades archives, then aggTrades from REST."
)
BATCH_WAIT_HELP = (
    "Let a small batch wait this long for more trades before it is committed: fewer, bigger "
    "commits (e.g. 20ms with --all: a third of the CPU, ~15 ms more lag)."
)
METRICS_PORT_HELP = (
    "Serve Prometheus metrics at /metrics and a health check at /healthz on this port (0: any "
    "free port)."
)
HEALTH_THRESHOLD_HELP = (
    "/healthz answers 503 once received trades wait this long uncommitted or a connection stays "
    "down this long (and at once while the database is down)."
)
PORT_MAX = 65535
REDUNDANCY_MAX = 3

commands = command_app()

#: Where the default exchange cannot be reached: the way in that needs no network.
OFFLINE_HINT = "no network here? `binprice demo` tries binprice offline, on a local test exchange"


@commands.command()
def ingest(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SYMBOL]...",
            help="Symbols to capture (default BTCUSDT ETHUSDT, or $BINPRICE_SYMBOLS).",
            show_default=False,
        ),
    ] = None,
    all_symbols: Annotated[bool, typer.Option("--all", help=ALL_HELP)] = False,
    quotes: Annotated[
        list[str] | None,
        typer.Option(
            "--quote",
            metavar="ASSET",
            help="With --all: only symbols quoted in ASSET (repeatable, e.g. --quote USDT).",
            show_default=False,
        ),
    ] = None,
    ws_url: Annotated[
        str | None,
        url_option(
            "BINPRICE_WS_URL",
            "WebSocket base URL (binprice appends /stream?streams=…).",
            "wss://stream.binance.com:9443",
        ),
    ] = None,
    rest_url: RestUrl = None,
    exchange: Exchange = "binance",
    market: MarketOption = None,
    stream: Annotated[str, typer.Option("--stream", metavar="STREAM", help=STREAM_HELP)] = "trade",
    api_key: ApiKeyOption = None,
    duration: Annotated[
        str | None,
        typer.Option(
            metavar=DurationMeta, help=f"Stop after this long: {DURATION_HELP}", show_default=False
        ),
    ] = None,
    max_trades: Annotated[
        int | None,
        typer.Option(metavar="N", min=1, help="Stop after storing this many new trades."),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            metavar="FORMAT",
            help="auto (live table on a terminal, plain lines elsewhere), live, plain or json.",
        ),
    ] = "auto",
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only errors and the summary.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Also print every trade as it is stored.")
    ] = False,
    backfill_max: Annotated[
        int, typer.Option(metavar="N", min=0, help=BACKFILL_MAX_HELP)
    ] = 1_000_000,
    redundancy: Annotated[
        int, typer.Option(metavar="N", min=1, max=REDUNDANCY_MAX, help=REDUNDANCY_HELP)
    ] = 1,
    quiet_period: Annotated[
        str, typer.Option(metavar=DurationMeta, help=QUIET_PERIOD_HELP)
    ] = "60s",
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help=SINCE_HELP, show_default=False)
    ] = None,
    archive_url: Annotated[
        str | None,
        url_option("BINPRICE_ARCHIVE_URL", "The archive service for --since.", ARCHIVE_URL_SHOWN),
    ] = None,
    batch_wait: Annotated[str, typer.Option(metavar=DurationMeta, help=BATCH_WAIT_HELP)] = "0s",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="BINPRICE_METRICS_PORT",
            metavar="PORT",
            min=0,
            max=PORT_MAX,
            help=METRICS_PORT_HELP,
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            envvar="BINPRICE_METRICS_HOST",
            metavar="ADDRESS",
            help="The address --metrics-port listens on (0.0.0.0: every interface).",
        ),
    ] = "127.0.0.1",
    health_threshold: Annotated[
        str, typer.Option(metavar=DurationMeta, help=HEALTH_THRESHOLD_HELP)
    ] = "30s",
    compress_after: Annotated[
        str,
        typer.Option(
            envvar="BINPRICE_COMPRESS_AFTER",
            metavar=DurationMeta,
            help="Compress each month of trades this long after it closes (as `db compress`; "
            "late backfills land first); 0 or `off`: never.",
        ),
    ] = "3d",
    compress_days_after: Annotated[
        str,
        typer.Option(
            envvar="BINPRICE_COMPRESS_DAYS_AFTER",
            metavar=DurationMeta,
            help="Compress each UTC day of the month being captured this long after the day "
            "ends (as `db compress --days-before`), so the live month keeps only its last day "
            "or two as rows; 0 or `off`: never.",
        ),
    ] = "1d",
    database_url: DatabaseUrl = None,
) -> None:
    """Capture every trade of SYMBOLS (or, with --all, of every trading symbol) into the
    database until stopped (Ctrl+C flushes and exits)."""
    import os

    from binprice import ConfigError, EventKind, ExchangeUnavailableError, IngestOptions
    from binprice.cli._signals import run_until_signalled
    from binprice.cli.views.ingest import FORMATS, Monitor
    from binprice.cli.views.ingest_log import log_records_to

    if log_format not in FORMATS:
        raise ConfigError(
            f"unknown --log-format {log_format!r}; choose one of {', '.join(FORMATS)}"
        )
    options = IngestOptions.from_params(ctx.params | {"market": market_from(market)})
    from_env = os.environ.get("BINPRICE_SYMBOLS", "").split()
    chosen = tuple(symbols or ()) or (None if all_symbols else from_env)
    monitor = Monitor(log_format, quiet=quiet, verbose=verbose)
    if log_format == "json":
        errors_written_by(monitor.fatal)  # stderr stays one JSON object per line
    # From here every log record is one of the run's lines, in its format.
    with log_records_to(monitor):
        store = store_from(ctx, database_url)
        monitor.start()
        try:
            summary = run_until_signalled(
                lambda stop: store.ingest_async(
                    chosen or None,
                    options,
                    stop=stop,
                    on_event=monitor.event,
                    on_tick=monitor.tick,
                    on_stored=monitor.stored if verbose else None,
                ),
                on_stop=lambda: monitor.message(EventKind.STOPPING, STOPPING),
                aborted=ABORTED,
            )
        except ExchangeUnavailableError as exc:
            raise ExchangeUnavailableError(f"{exc}; {OFFLINE_HINT}") from None
        finally:
            monitor.stop()
        monitor.final(summary)


STOPPING = "stopping: committing what was received (again to abort)"
ABORTED = (
    "aborted; trades received but not committed are in the spool and will be committed by the "
    "next `binprice ingest`"
)
