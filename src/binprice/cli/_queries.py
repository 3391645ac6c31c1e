"""`binprice latest`, `at` and `range`: the read commands, each a call to the `Store`.

The queries and the renderers are imported inside the commands (and Rich only for a terminal)
so that `binprice latest` starts about as fast as a bare psycopg script.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from binprice.cli._app import (
    DURATION_HELP,
    TIME_HELP,
    Csv,
    DatabaseUrl,
    DurationMeta,
    End,
    Json,
    KindOption,
    Last,
    MarketOption,
    Start,
    Symbols,
    TimeMeta,
    command_app,
    err,
    market_from,
    store_from,
)

if TYPE_CHECKING:
    from binprice.cli.views.queries import Result

commands = command_app()


@commands.command()
def latest(
    ctx: typer.Context,
    symbols: Symbols = None,
    as_json: Json = False,
    as_csv: Csv = False,
    market: MarketOption = None,
    kind: KindOption = "trades",
    database_url: DatabaseUrl = None,
) -> None:
    """The last trade of each symbol: price, trade time, trade id, and how long ago."""
    check_format(as_json, as_csv)
    asked = tuple(symbols or ())
    with store_from(ctx, database_url) as store:
        found = store.latest(asked, market=market_from(market), kind=kind)
    emit(asked, found, "no {records}", kind=kind, as_json=as_json, as_csv=as_csv)


@commands.command()
def at(
    ctx: typer.Context,
    ts: Annotated[str, typer.Option(metavar=TimeMeta, help=f"The time: {TIME_HELP}")],
    symbols: Symbols = None,
    before: Annotated[
        bool, typer.Option("--before", help="As of TS: the last trade at or before TS.")
    ] = False,
    within: Annotated[
        str | None,
        typer.Option(
            metavar=DurationMeta, help=f"Leave out trades farther from TS: {DURATION_HELP}"
        ),
    ] = None,
    as_json: Json = False,
    as_csv: Csv = False,
    market: MarketOption = None,
    kind: KindOption = "trades",
    database_url: DatabaseUrl = None,
) -> None:
    """The trade nearest to TS for each symbol (a tie goes to the earlier), with its offset."""
    from binprice.timespec import format_duration, format_timestamp, parse_duration, parse_timestamp

    check_format(as_json, as_csv)
    asked = tuple(symbols or ())
    requested = parse_timestamp(ts)
    limit = parse_duration(within) if within is not None else None
    with store_from(ctx, database_url) as store:
        found = store.at(
            requested, asked, before=before, within=limit, market=market_from(market), kind=kind
        )
    from binprice.cli.views.queries import at_notes

    for note in at_notes(found, requested, now=datetime.now(UTC)):
        err(note)
    where = f"within {format_duration(limit)} of" if limit is not None else "near"
    emit(
        asked,
        found,
        f"no {{record}} {where} {format_timestamp(requested)}",
        kind=kind,
        as_json=as_json,
        as_csv=as_csv,
    )


@commands.command("range")
def range_(
    ctx: typer.Context,
    symbols: Symbols = None,
    last: Last = None,
    start: Start = None,
    end: End = None,
    as_json: Json = False,
    as_csv: Csv = False,
    market: MarketOption = None,
    kind: KindOption = "trades",
    database_url: DatabaseUrl = None,
) -> None:
    """Open, high, low (with when), close, trades, volume and VWAP in [start, end)."""
    from binprice.timespec import format_timestamp, parse_window

    check_format(as_json, as_csv)
    asked = tuple(symbols or ())
    window_start, window_end = parse_window(last=last, start=start, end=end)
    with store_from(ctx, database_url) as store:
        found = store.range(window_start, window_end, asked, market=market_from(market), kind=kind)
    window = f"from {format_timestamp(window_start)} to {format_timestamp(window_end)}"
    emit(asked, found, f"no {{records}} {window}", kind=kind, as_json=as_json, as_csv=as_csv)


def check_format(as_json: bool, as_csv: bool) -> None:
    """Checked before any query: bad input is exit 2 even when nothing would be found."""
    from binprice.errors import UsageError

    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be combined")


def missing_symbols(asked: Sequence[str] | None, found: Sequence[Result]) -> list[str]:
    """The symbols asked for that have no answer, in the order asked."""
    from binprice.symbols import normalize_symbols

    have = {result.symbol for result in found}
    return [s for s in normalize_symbols(asked or ()) if s not in have]


def emit(
    asked: Sequence[str] | None,
    found: Sequence[Result],
    nothing: str,
    *,
    kind: str = "trades",
    as_json: bool,
    as_csv: bool,
) -> None:
    """Name the symbols without an answer on stderr, then print the results in the chosen
    format. Nothing at all is exit 1, with `nothing` (what was looked for; `{record}` and
    `{records}` name those of `kind`) in the message."""
    from binprice.cli.views import queries as render
    from binprice.cli.views.queries import record_of, recorded_by, records_of
    from binprice.errors import NotFoundError

    missing = missing_symbols(asked, found)
    looked_for = nothing.format(record=record_of(kind), records=records_of(kind))
    if not found:
        if not asked:
            raise NotFoundError(f"{looked_for} for any symbol ({recorded_by(kind)} records them)")
        raise NotFoundError(f"{looked_for} for {', '.join(missing)}")
    if missing:
        err(f"no {records_of(kind)} for: {', '.join(missing)}")
    if as_json:
        typer.echo(render.to_json(found))
    elif as_csv:
        typer.echo(render.to_csv(found), nl=False)
    elif sys.stdout.isatty():
        render.print_terminal(found, now=datetime.now(UTC))
    else:
        typer.echo(render.to_text(found, now=datetime.now(UTC)), nl=False)
