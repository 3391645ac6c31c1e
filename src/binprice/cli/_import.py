"""`binprice import`: past trades from Binance's public archives → the database.

Parse → `history.import_history` → render: a Rich progress bar per symbol on a terminal (files,
trades, MB/s, ETA), one line per file elsewhere (`plain`, or `json` for log shippers). The CLI
owns the signals: the first Ctrl+C (or SIGTERM) stops after the chunk being loaded is committed
(the next run resumes there) and abandons downloads at once; a second one aborts.
"""

from __future__ import annotations

from datetime import UTC, date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from binprice.cli._app import (
    ARCHIVE_URL_SHOWN,
    DatabaseUrl,
    command_app,
    settings_from,
    url_option,
)
from binprice.cli._import_view import FORMATS, ImportView

if TYPE_CHECKING:
    from binprice.history import ImportOptions, ImportSummary
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
    database_url: DatabaseUrl = None,
) -> None:
    """Import every trade of SYMBOLS from --start to --end from Binance's public archives
    (verified against their SHA-256; re-runs skip what is done, interrupted runs resume)."""
    from binprice import db
    from binprice.db import migrations
    from binprice.errors import ConfigError, ImportIncompleteError
    from binprice.exchange.bans import BanBook
    from binprice.exchange.endpoints import DEFAULT_REST_URL
    from binprice.history import DEFAULT_ARCHIVE_URL, ImportOptions

    if log_format not in FORMATS:
        raise ConfigError(
            f"unknown --log-format {log_format!r}; choose one of {', '.join(FORMATS)}"
        )
    settings = settings_from(ctx, database_url)
    names = tuple(targets or ())
    files = tuple(Path(t) for t in names if t.lower().endswith(".zip") or "/" in t)
    options = ImportOptions(
        symbols=tuple(t for t in names if Path(t) not in files),
        start=_day(start, "--start"),
        end=_day(end, "--end"),
        archive_url=archive_url or DEFAULT_ARCHIVE_URL,
        folders=tuple(Path(d) for d in from_dirs or ()),
        files=files,
        spool_dir=settings.data_dir / "downloads",
        bans_file=BanBook.in_data_dir(settings.data_dir).path,
        rest_url=rest_url or DEFAULT_REST_URL,
        rest_tail=rest_tail,
        downloads=downloads,
        loaders=loaders,
        commit_rows=commit_every,
    )
    view = ImportView(log_format, quiet=quiet)
    url = db.resolve_url(settings)
    with db.connect(url) as conn:
        current = db.current_revision(conn)
    if current != db.SCHEMA_HEAD:
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
                view.line(
                    "stopping: downloads abandoned, the chunk being loaded committed "
                    "(again to abort)"
                )
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
