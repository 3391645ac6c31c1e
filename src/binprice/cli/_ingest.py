"""`binprice ingest`: options → IngestConfig; the run itself is in `_ingest_run`."""

from __future__ import annotations

from typing import Annotated

import typer

from binprice.cli._app import ExchangeOption, RestUrlOption, app, settings_from


@app.command()
def ingest(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Argument(
            help="Symbols to capture (default BTCUSDT ETHUSDT, or $BINPRICE_SYMBOLS).",
            show_default=False,
        ),
    ] = None,
    ws_url: Annotated[
        str | None,
        typer.Option(
            "--ws-url",
            envvar="BINPRICE_WS_URL",
            help="WebSocket base URL (binprice appends /stream?streams=…).",
            show_default="wss://stream.binance.com:9443",
        ),
    ] = None,
    rest_url: RestUrlOption = None,
    exchange: ExchangeOption = "binance",
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration", help="Stop after this long (e.g. 10m, 1h30m).", show_default=False
        ),
    ] = None,
    max_trades: Annotated[
        int | None,
        typer.Option("--max-trades", help="Stop after storing this many new trades.", min=1),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
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
        int,
        typer.Option(
            "--backfill-max",
            help="Most trade ids fetched from REST per gap (the downtime since the last run "
            "included); the older part of a larger gap is recorded as skipped.",
            min=0,
        ),
    ] = 1_000_000,
    redundancy: Annotated[
        int,
        typer.Option(
            "--redundancy",
            help="Independent connections per group of streams (1-3); each trade is taken from "
            "whichever delivers it first, so a dropped connection costs no REST call.",
            min=1,
            max=3,
        ),
    ] = 1,
    quiet_period: Annotated[
        str,
        typer.Option(
            "--quiet-period",
            help="Ask the exchange for the newest trade id of a symbol quiet for this long "
            "(then ever less often while it stays quiet).",
        ),
    ] = "60s",
) -> None:
    """Capture every trade of SYMBOLS into the database until stopped (Ctrl+C flushes and exits)."""
    import os

    from binprice import db
    from binprice.cli import _ingest_run
    from binprice.cli._monitor import FORMATS, Monitor
    from binprice.db import migrations
    from binprice.errors import ConfigError
    from binprice.ingest.config import IngestConfig, endpoints, normalize_symbols
    from binprice.ingest.events import EventKind
    from binprice.timespec import parse_duration

    ws, rest = endpoints(exchange, ws_url, rest_url)
    if log_format not in FORMATS:
        raise ConfigError(
            f"unknown --log-format {log_format!r}; choose one of {', '.join(FORMATS)}"
        )
    import dataclasses

    chosen = symbols or os.environ.get("BINPRICE_SYMBOLS", "").split() or ["BTCUSDT", "ETHUSDT"]
    # Everything the user typed is checked before the database is touched.
    config = IngestConfig(
        symbols=normalize_symbols(chosen),
        ws_url=ws,
        rest_url=rest,
        max_trades=max_trades,
        duration=parse_duration(duration).total_seconds() if duration else None,
        backfill_max=backfill_max,
        redundancy=redundancy,
        quiet_period=parse_duration(quiet_period).total_seconds(),
    )
    settings = settings_from(ctx)
    monitor = Monitor(log_format, quiet=quiet, verbose=verbose)
    url = db.resolve_url(settings)
    with db.connect(url) as conn:
        current = db.current_revision(conn)
    if current != db.SCHEMA_HEAD:
        migrations.upgrade(url)  # imports Alembic only when there is something to do
        monitor.message(
            EventKind.MIGRATED,
            f"migrated the database at {db.describe(url)} to the newest schema",
        )
    else:
        monitor.message(
            EventKind.MIGRATED, f"database at {db.describe(url)} is at the newest schema"
        )
    config = dataclasses.replace(config, spool_dir=_ingest_run.spool_dir(settings.data_dir, url))
    _ingest_run.run(config, url, monitor)
