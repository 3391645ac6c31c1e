"""`binprice ingest`: options → IngestConfig; the run itself is in `_ingest_run`."""

from __future__ import annotations

import click

from binprice.cli._app import (
    DURATION_HELP,
    DurationMeta,
    app,
    argument,
    database_url_option,
    exchange_option,
    flag,
    option,
    rest_url_option,
    store_from,
)


@app.command()
@argument(
    "symbols",
    nargs=-1,
    metavar="[SYMBOL]...",
    help="Symbols to capture (default BTCUSDT ETHUSDT, or $BINPRICE_SYMBOLS).",
)
@flag(
    "--all",
    "all_symbols",
    help="Every symbol the exchange lists as TRADING, re-read hourly: new listings "
    "are added and halted or delisted ones dropped while the run goes on.",
)
@click.option(
    "--quote",
    "quotes",
    multiple=True,
    metavar="ASSET",
    help="With --all: only symbols quoted in ASSET (repeatable, e.g. --quote USDT).",
    show_default=False,
)
@option(
    "--ws-url",
    envvar="BINPRICE_WS_URL",
    metavar="URL",
    default=None,
    help="WebSocket base URL (binprice appends /stream?streams=…).",
    show_default="wss://stream.binance.com:9443",
)
@rest_url_option
@exchange_option
@click.option(
    "--duration",
    metavar=DurationMeta,
    default=None,
    help=f"Stop after this long: {DURATION_HELP}",
    show_default=False,
)
@click.option(
    "--max-trades",
    metavar="N",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after storing this many new trades.",
)
@click.option(
    "--log-format",
    metavar="FORMAT",
    default="auto",
    help="auto (live table on a terminal, plain lines elsewhere), live, plain or json.",
)
@flag("-q", "--quiet", help="Only errors and the summary.")
@flag("-v", "--verbose", help="Also print every trade as it is stored.")
@click.option(
    "--backfill-max",
    metavar="N",
    type=click.IntRange(min=0),
    default=1_000_000,
    help="Most trade ids fetched from REST per gap (the downtime since the last run "
    "included); the older part of a larger gap is recorded as skipped.",
)
@click.option(
    "--redundancy",
    metavar="N",
    type=click.IntRange(1, 3),
    default=1,
    help="Independent connections per group of streams (1-3); each trade is taken from "
    "whichever delivers it first, so a dropped connection costs no REST call.",
)
@click.option(
    "--quiet-period",
    metavar=DurationMeta,
    default="60s",
    help="Ask the exchange for the newest trade id of a symbol quiet for this long "
    "(then ever less often while it stays quiet).",
)
@click.option(
    "--since",
    metavar="DATE",
    default=None,
    help="First import every trade since this UTC day from Binance's public archives "
    "(verified; the days not published yet from REST), then stream: one command from "
    "an empty database to live.",
    show_default=False,
)
@option(
    "--archive-url",
    envvar="BINPRICE_ARCHIVE_URL",
    metavar="URL",
    default=None,
    help="The archive service for --since.",
    show_default="https://data.binance.vision",
)
@click.option(
    "--batch-wait",
    metavar=DurationMeta,
    default="0s",
    help="Let a small batch wait this long for more trades before it is committed: "
    "fewer, bigger commits (e.g. 20ms with --all: a third of the CPU, ~15 ms more lag).",
)
@option(
    "--metrics-port",
    envvar="BINPRICE_METRICS_PORT",
    metavar="PORT",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics at /metrics and a health check at /healthz on "
    "this port (0: any free port).",
    show_default=False,
)
@option(
    "--metrics-host",
    envvar="BINPRICE_METRICS_HOST",
    metavar="ADDRESS",
    default="127.0.0.1",
    help="The address --metrics-port listens on (0.0.0.0: every interface).",
)
@click.option(
    "--health-threshold",
    metavar=DurationMeta,
    default="30s",
    help="/healthz answers 503 once received trades wait this long uncommitted or a "
    "connection stays down this long (and at once while the database is down).",
)
@database_url_option
@click.pass_context
def ingest(
    ctx: click.Context,
    symbols: tuple[str, ...],
    all_symbols: bool,
    quotes: tuple[str, ...],
    ws_url: str | None,
    rest_url: str | None,
    exchange: str,
    duration: str | None,
    max_trades: int | None,
    log_format: str,
    quiet: bool,
    verbose: bool,
    backfill_max: int,
    redundancy: int,
    quiet_period: str,
    since: str | None,
    archive_url: str | None,
    batch_wait: str,
    metrics_port: int | None,
    metrics_host: str,
    health_threshold: str,
    database_url: str | None,
) -> None:
    """Capture every trade of SYMBOLS (or, with --all, of every trading symbol) into the
    database until stopped (Ctrl+C flushes and exits)."""
    import dataclasses
    import os

    from binprice.cli import _ingest_run
    from binprice.cli._monitor import FORMATS, Monitor
    from binprice.db import describe
    from binprice.errors import AbortedError, ConfigError
    from binprice.ingest.events import EventKind
    from binprice.ingest.spool import spool_root

    if log_format not in FORMATS:
        raise ConfigError(
            f"unknown --log-format {log_format!r}; choose one of {', '.join(FORMATS)}"
        )
    monitor = Monitor(log_format, quiet=quiet, verbose=verbose)
    # From here every log record is one of the run's lines, in its format.
    with _ingest_run.log_records_to(monitor):
        store = store_from(ctx, database_url)
        from_env = os.environ.get("BINPRICE_SYMBOLS", "").split()
        chosen = symbols or (None if all_symbols else from_env)
        # Everything the user typed is checked before the database is touched.
        config = store.ingest_config(
            chosen or None,
            all_symbols=all_symbols,
            quotes=quotes or (),
            duration=duration,
            max_trades=max_trades,
            exchange=exchange,
            ws_url=ws_url,
            rest_url=rest_url,
            redundancy=redundancy,
            quiet_period=quiet_period,
            backfill_max=backfill_max,
            since=since,
            archive_url=archive_url,
            batch_wait=batch_wait,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            health_threshold=health_threshold,
        )
        url = store.url
        try:
            migrated = store.upgrade_if_behind()
        except KeyboardInterrupt:
            raise AbortedError(
                "interrupted during the migration to the newest schema; PostgreSQL rolled it "
                "back and the database is as it was: run `binprice ingest` again"
            ) from None
        state = "migrated to" if migrated else "is at"
        where = f"database at {describe(url)} {state} the newest schema"
        monitor.message(EventKind.MIGRATED, where)
        config = dataclasses.replace(config, spool_dir=spool_root(store.settings.data_dir, url))
        _ingest_run.run(config, url, monitor)
