"""`binprice import`: past trades from Binance's public archives → the database.

Parse → `ImportOptions` → one `Store.import_history_async` run under the CLI's signals
(`_signals`) → render: a Rich progress bar per symbol on a terminal (files, trades, MB/s, ETA),
one line per file elsewhere (`plain`, or `json` for log shippers). The CLI
owns the signals: the first Ctrl+C (or SIGTERM) stops after the chunk being loaded is committed
(the next run resumes there) and abandons downloads at once; a second one aborts.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import UTC, date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from binprice.cli._app import (
    ARCHIVE_URL_SHOWN,
    ApiKeyOption,
    DatabaseUrl,
    DurationMeta,
    KindOption,
    MarketOption,
    command_app,
    market_from,
    store_from,
    url_option,
)
from binprice.cli.views.imports import FORMATS, ImportView

if TYPE_CHECKING:
    import asyncio

    from binprice import ImportSummary

_DATE_HELP = "a date (UTC day), or any time binprice reads (its day is taken)"
FROM_HELP = (
    "A folder of zips instead of the archive service: its layout (data/spot/...) or flat, each "
    "zip with its .CHECKSUM. Repeatable."
)
REST_TAIL_HELP = (
    "Fetch what the archive lacks from REST historicalTrades: the days it has not published yet "
    "(it lags about a day) and holes in its files."
)

commands = command_app()


@commands.command("import")
def import_(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SYMBOL|ZIP]...",
            help="Symbols to import (e.g. BTCUSDT ETHUSDT) and/or zip files downloaded by hand.",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help=f"First day to import: {_DATE_HELP}.", show_default=False
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help=f"Day after the last one (exclusive): {_DATE_HELP}.",
            show_default="today (UTC)",
        ),
    ] = None,
    archive_url: Annotated[
        str | None,
        url_option("BINPRICE_ARCHIVE_URL", "The archive service.", ARCHIVE_URL_SHOWN),
    ] = None,
    from_dirs: Annotated[
        list[str] | None,
        typer.Option("--from", metavar="DIR", help=FROM_HELP, show_default=False),
    ] = None,
    rest_tail: Annotated[bool, typer.Option("--rest-tail", help=REST_TAIL_HELP)] = False,
    rest_url: Annotated[
        str | None,
        url_option(
            "BINPRICE_REST_URL", "REST base URL for --rest-tail.", "https://api.binance.com"
        ),
    ] = None,
    downloads: Annotated[
        int, typer.Option(metavar="N", min=1, help="Files downloaded ahead of the loaders.")
    ] = 2,
    loaders: Annotated[
        int,
        typer.Option(
            metavar="N", min=1, help="Files loaded at once, each on its own database connection."
        ),
    ] = 2,
    log_format: Annotated[
        str,
        typer.Option(
            metavar="FORMAT",
            help="auto (progress bars on a terminal, plain lines elsewhere), live, plain or json.",
        ),
    ] = "auto",
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only problems and the summary.")
    ] = False,
    commit_every: Annotated[
        int, typer.Option(hidden=True, min=1, help="Trades per commit.")
    ] = 1_000_000,
    market: MarketOption = None,
    kind: KindOption = "trades",
    api_key: ApiKeyOption = None,
    compress_after: Annotated[
        str,
        typer.Option(
            envvar="BINPRICE_COMPRESS_AFTER",
            metavar=DurationMeta,
            help="Write a month compressed (as `db compress` would) when it closed at least "
            "this long ago; 0 or `off`: every month as rows.",
        ),
    ] = "3d",
    database_url: DatabaseUrl = None,
) -> None:
    """Import every trade of SYMBOLS from --start to --end from Binance's public archives
    (verified against their SHA-256; re-runs skip what is done, interrupted runs resume)."""
    from binprice import ConfigError, ImportIncompleteError, ImportOptions
    from binprice.cli._signals import run_until_signalled

    if log_format not in FORMATS:
        raise ConfigError(
            f"unknown --log-format {log_format!r}; choose one of {', '.join(FORMATS)}"
        )
    names = tuple(targets or ())
    files = tuple(Path(t) for t in names if t.lower().endswith(".zip") or "/" in t)
    services: dict[str, Any] = {"archive_url": archive_url, "rest_url": rest_url}  # None: its own
    options = ImportOptions(
        symbols=tuple(t for t in names if Path(t) not in files),
        start=_day(start, "--start"),
        end=_day(end, "--end"),
        folders=tuple(Path(d) for d in from_dirs or ()),
        files=files,
        rest_tail=rest_tail,
        downloads=downloads,
        loaders=loaders,
        commit_rows=commit_every,
        compress_after=compress_after,
        market=market_from(market),
        kind=kind,
        api_key=api_key or None,
        **{name: url for name, url in services.items() if url is not None},
    )
    view = ImportView(log_format, quiet=quiet, kind=kind)
    store = store_from(ctx, database_url)

    def migrated(where: str) -> None:
        view.line(f"migrated the database at {where} to the newest schema")

    def run(stop: asyncio.Event) -> Coroutine[Any, Any, ImportSummary]:
        view.start()
        return store.import_history_async(
            options,
            stop=stop,
            on_event=view.event,
            on_progress=view.progress,
            on_migrated=migrated,
        )

    try:
        summary = run_until_signalled(run, on_stop=lambda: view.line(STOPPING), aborted=ABORTED)
    finally:
        view.stop()
    view.final(summary)
    if not summary.ok:
        failed = summary.failed
        raise ImportIncompleteError(
            f"{len(failed)} file{'s' if len(failed) > 1 else ''} not imported (listed above); "
            "the others are stored, and a re-run retries only what is missing"
        )


STOPPING = "stopping: downloads abandoned, the chunk being loaded committed (again to abort)"
ABORTED = "aborted; the next `binprice import` resumes where this stopped"


def _day(text: str | None, flag: str) -> date | None:
    from binprice.errors import UsageError
    from binprice.timespec import parse_timestamp

    if text is None:
        return None
    try:
        return parse_timestamp(text).astimezone(UTC).date()
    except UsageError as exc:
        raise UsageError(f"{flag}: {exc}") from None
