"""`binprice latest`, `at` and `range`: the read commands.

psycopg, the queries and the renderers are imported inside the commands (and Rich only for a
terminal) so that `binprice latest` starts about as fast as a bare psycopg script.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from binprice.cli._app import (
    DURATION_HELP,
    TIME_HELP,
    CsvOption,
    JsonOption,
    SymbolsArgument,
    app,
    err,
    settings_from,
)

if TYPE_CHECKING:
    import psycopg

    from binprice.cli._render import Result
    from binprice.db.queries import Answer


# psycopg, the queries and the renderers are imported inside the commands (and Rich only for a
# terminal) so that `binprice latest` starts about as fast as a bare psycopg script.


@app.command()
def latest(
    ctx: typer.Context,
    symbols: SymbolsArgument = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """The last trade of each symbol: price, trade time, trade id, and how long ago."""
    from binprice.db.queries import latest_prices

    with reading(ctx) as conn:
        answer = latest_prices(conn, symbols or ())
    _emit(answer, as_json=as_json, as_csv=as_csv)


@app.command()
def at(
    ctx: typer.Context,
    ts: Annotated[str, typer.Option("--ts", help=f"The time to look at: {TIME_HELP}")],
    symbols: SymbolsArgument = None,
    before: Annotated[
        bool, typer.Option("--before", help="As of TS: the last trade at or before TS.")
    ] = False,
    within: Annotated[
        str | None,
        typer.Option("--within", help=f"Refuse trades farther than this from TS: {DURATION_HELP}"),
    ] = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """The trade nearest to TS for each symbol (a tie goes to the earlier), with its offset."""
    from binprice.db.queries import price_at
    from binprice.timespec import parse_duration, parse_timestamp

    requested = parse_timestamp(ts)
    limit = parse_duration(within) if within is not None else None
    with reading(ctx) as conn:
        answer = price_at(conn, requested, symbols or (), before=before, within=limit)
    _emit(answer, as_json=as_json, as_csv=as_csv)


@app.command("range")
def range_(
    ctx: typer.Context,
    symbols: SymbolsArgument = None,
    last: Annotated[
        str | None,
        typer.Option("--last", help=f"The window ending at --end (default now): {DURATION_HELP}"),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help=f"Window start, inclusive: {TIME_HELP}")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Window end, exclusive (default: now).")
    ] = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Open, high, low (with when), close, trades, volume and VWAP in [start, end)."""
    from binprice.db.queries import price_range
    from binprice.timespec import parse_window

    window_start, window_end = parse_window(last=last, start=start, end=end)
    with reading(ctx) as conn:
        answer = price_range(conn, window_start, window_end, symbols or ())
    _emit(answer, as_json=as_json, as_csv=as_csv)


@contextmanager
def reading(ctx: typer.Context) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A checked read connection; driver errors mid-query become one DatabaseUnavailableError."""
    import psycopg

    from binprice import db

    settings = settings_from(ctx)
    with db.connect_for_reading(settings) as conn:
        try:
            yield conn
        except psycopg.Error as exc:
            raise db.database_error(db.resolve_url(settings), exc) from None


def _emit(answer: Answer[Result], *, as_json: bool, as_csv: bool) -> None:
    """Name symbols without an answer on stderr, then print the results in the chosen format."""
    from binprice.cli import _render as render
    from binprice.errors import UsageError

    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be combined")
    if answer.missing:
        err(f"no trades for: {', '.join(answer.missing)}")
    results: Sequence[Result] = answer.results
    if as_json:
        typer.echo(render.to_json(results))
    elif as_csv:
        typer.echo(render.to_csv(results), nl=False)
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(render.to_table(results, now=datetime.now(UTC)))
    else:
        typer.echo(render.to_text(results, now=datetime.now(UTC)), nl=False)
