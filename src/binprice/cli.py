"""The `binprice` command line: parse → call the library → render.

The only module that imports typer. Command bodies stay a few lines; every BinpriceError
becomes one `error: …` line on stderr and a non-zero exit (see `main`). Heavy imports
(Alembic, SQLAlchemy, aiohttp, Rich) happen inside the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from binprice import __version__
from binprice.errors import BinpriceError
from binprice.settings import Settings, load_settings

if TYPE_CHECKING:
    import psycopg

    from binprice.queries import Answer
    from binprice.render import Result


def _pass_plain_strings_through() -> None:
    """Keep pydantic out of start-up: typer 0.29 coerces every non-bool parameter through a
    pydantic TypeAdapter, and importing pydantic costs ~60 ms, a third of `binprice latest`.

    Values that already are what a ``str``, ``bool`` or ``list[str]`` parameter wants need no
    coercion (binprice parses times and durations itself, in timespec), so they pass through;
    anything else still takes typer's own path. This touches typer internals, so it is guarded:
    if they change, typer's normal (correct, slower) coercion runs.
    """
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - another typer version
        return
    original = getattr(_TyperParameter, "get_runtime_param", None)
    if original is None:  # pragma: no cover
        return
    plain: set[object] = {str, bool, list[str]}

    class PassThrough(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return list(value)
            if self.annotation in (str, bool) and isinstance(value, self.annotation):
                return value
            typed = build_runtime_param(param.type_descriptor)  # anything else: typer's way
            return typed._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: _TyperParameter) -> RuntimeParam:
        if self._runtime_param is None and self.type_descriptor.annotation in plain:
            info = self.type_descriptor.parameter_info
            if info.parser is None:
                self._runtime_param = PassThrough(info, self.type_descriptor.annotation)
        runtime: RuntimeParam = original(self)
        return runtime

    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]


_pass_plain_strings_through()

app = typer.Typer(
    name="binprice",
    help="Capture every Binance trade into PostgreSQL and ask questions of it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(
    help="Manage the database: migrations, status, the embedded server.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help=(
            "PostgreSQL URL (postgresql://user:password@host:port/db). Default: "
            "$BINPRICE_DATABASE_URL, $DATABASE_URL, a .env file (also POSTGRES_USER/"
            "POSTGRES_PASSWORD/POSTGRES_DB/DB_HOST/DB_PORT), else the embedded server."
        ),
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"binprice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: DatabaseUrlOption = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Capture every Binance trade into PostgreSQL and ask questions of it."""
    ctx.obj = database_url


def settings_from(ctx: typer.Context) -> Settings:
    """The Settings for this invocation (global --database-url, env, .env, embedded)."""
    url = ctx.find_root().obj
    return load_settings(url if isinstance(url, str) else None)


def _err(message: str) -> None:
    typer.echo(message, err=True)


# --- db ---------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    from binprice import db, migrations

    url = db.resolve_url(settings_from(ctx))
    reached = migrations.upgrade(url, revision)
    _err(f"database at {db.describe(url)} is at revision {reached or 'base'}")


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision; `base` removes all tables.")],
) -> None:
    """Migrate the database down to REVISION (`base` drops binprice's tables and data)."""
    from binprice import db, migrations

    url = db.resolve_url(settings_from(ctx))
    reached = migrations.downgrade(url, revision)
    _err(f"database at {db.describe(url)} is at revision {reached or 'base'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's current revision (`base` if it has no binprice schema)."""
    from binprice import db
    from binprice.migrations import SCHEMA_HEAD

    url = db.resolve_url(settings_from(ctx))
    with db.connect(url) as conn:
        current = db.current_revision(conn)
    suffix = " (head)" if current == SCHEMA_HEAD else f" (behind head {SCHEMA_HEAD})"
    typer.echo(f"{current or 'base'}{suffix}")


@db_app.command("history")
def db_history(ctx: typer.Context) -> None:
    """List the schema revisions, newest first, marking head and the database's current one."""
    from binprice import db, migrations

    url = db.resolve_url(settings_from(ctx))
    with db.connect(url) as conn:
        current = db.current_revision(conn)
    for rev in migrations.history(current):
        marks = [m for m, on in (("head", rev.is_head), ("current", rev.is_current)) if on]
        tag = f" ({', '.join(marks)})" if marks else ""
        typer.echo(f"{rev.down_revision or '<base>'} -> {rev.revision}{tag}: {rev.message}")


@db_app.command("info")
def db_info(ctx: typer.Context) -> None:
    """Show where the database is, the masked URL, server version, revision and row count."""
    from binprice import db

    info = db.database_info(settings_from(ctx))
    trades = "-" if info.trades is None else f"{info.trades:,}"
    if not info.trades_exact:
        trades = f"~{trades} (estimate)"
    rows = [
        ("database", info.location),
        ("configured by", info.source),
        ("url", info.url),
        ("server", f"PostgreSQL {info.server_version}"),
        ("revision", f"{info.revision or 'base'} (head: {info.head})"),
        ("trades", trades),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")


@db_app.command("start")
def db_start(ctx: typer.Context) -> None:
    """Start the embedded PostgreSQL server (commands start it by themselves when needed)."""
    from binprice import embedded

    settings = settings_from(ctx)
    _require_embedded(settings)
    info = embedded.ensure_server(settings.data_dir)
    _err(f"embedded PostgreSQL runs (pid {info.pid}), data in {info.pgdata}")


@db_app.command("stop")
def db_stop(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL server. It otherwise keeps running after binprice exits."""
    from binprice import embedded

    settings = settings_from(ctx)
    _require_embedded(settings)
    if embedded.stop_server(settings.data_dir):
        _err("embedded PostgreSQL stopped")
    else:
        _err("embedded PostgreSQL was not running")


# --- queries ------------------------------------------------------------------------------
# psycopg, the queries and the renderers are imported inside the commands (and Rich only for a
# terminal) so that `binprice latest` starts about as fast as a bare psycopg script.

SymbolsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Symbols, any case (e.g. btcusdt ETHUSDT). Default: every recorded symbol.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print a JSON array: one object per symbol, stable keys.")
]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")]
TIME_HELP = (
    "ISO 8601 with Z or an offset (naive means UTC), a date (UTC midnight), epoch seconds or "
    "milliseconds, 'now', or relative: -5m, '5m ago'."
)
DURATION_HELP = "500ms, 30s, 1m, 1h30m, 2d, 1w."


@app.command()
def latest(
    ctx: typer.Context,
    symbols: SymbolsArgument = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """The last trade of each symbol: price, trade time, trade id, and how long ago."""
    from binprice.queries import latest_prices

    with _reading(ctx) as conn:
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
    from binprice.queries import price_at
    from binprice.timespec import parse_duration, parse_timestamp

    requested = parse_timestamp(ts)
    limit = parse_duration(within) if within is not None else None
    with _reading(ctx) as conn:
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
    from binprice.queries import price_range
    from binprice.timespec import parse_window

    window_start, window_end = parse_window(last=last, start=start, end=end)
    with _reading(ctx) as conn:
        answer = price_range(conn, window_start, window_end, symbols or ())
    _emit(answer, as_json=as_json, as_csv=as_csv)


@app.command()
def gaps(
    ctx: typer.Context,
    symbols: SymbolsArgument = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Scan the stored ids for holes and repeats; exit 1 if a hole is not "
            "accounted for by a recorded open, hole or skipped gap.",
        ),
    ] = False,
    last: Annotated[
        str | None,
        typer.Option("--last", help=f"With --verify: the window ending at --end: {DURATION_HELP}"),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--start", help=f"With --verify: window start, inclusive: {TIME_HELP}"),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="With --verify: window end, exclusive.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List recorded gaps (missing trade ids) and their state: open, filled, hole, skipped."""
    from binprice.errors import UsageError
    from binprice.gaps import (
        gaps_json,
        gaps_text,
        list_gaps,
        verification_json,
        verification_text,
        verify_gaps,
    )

    if not verify:
        if last or start or end:
            raise UsageError("--last/--start/--end select the window of --verify")
        with _reading(ctx) as conn:
            found = list_gaps(conn, symbols or ())
        typer.echo(gaps_json(found) if as_json else gaps_text(found), nl=as_json)
        return
    window_start = window_end = None
    if last or start or end:
        from binprice.timespec import parse_window

        window_start, window_end = parse_window(last=last, start=start, end=end)
    with _reading(ctx) as conn:
        result = verify_gaps(conn, symbols or (), start=window_start, end=window_end)
    typer.echo(verification_json(result) if as_json else verification_text(result), nl=as_json)
    if not result.ok:
        raise typer.Exit(1)


@contextmanager
def _reading(ctx: typer.Context) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
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
    from binprice import render
    from binprice.errors import UsageError

    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be combined")
    if answer.missing:
        _err(f"no trades for: {', '.join(answer.missing)}")
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


# --- ingest -----------------------------------------------------------------------------

_EXCHANGES = "binance, binance-us, testnet, data-stream"


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
    rest_url: Annotated[
        str | None,
        typer.Option(
            "--rest-url",
            envvar="BINPRICE_REST_URL",
            help="REST base URL for symbol checks and backfill.",
            show_default="https://api.binance.com",
        ),
    ] = None,
    exchange: Annotated[
        str,
        typer.Option("--exchange", envvar="BINPRICE_EXCHANGE", help=f"Preset: {_EXCHANGES}."),
    ] = "binance",
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
) -> None:
    """Capture every trade of SYMBOLS into the database until stopped (Ctrl+C flushes and exits)."""
    import os

    from binprice import _ingest_cli, db, migrations
    from binprice.errors import ConfigError
    from binprice.ingest.config import PRESETS, IngestConfig, normalize_symbols, rest_base, ws_base
    from binprice.monitor import FORMATS, Monitor
    from binprice.timespec import parse_duration

    if exchange not in PRESETS:
        raise ConfigError(f"unknown --exchange {exchange!r}; choose one of {_EXCHANGES}")
    if log_format not in FORMATS:
        raise ConfigError(
            f"unknown --log-format {log_format!r}; choose one of {', '.join(FORMATS)}"
        )
    preset_ws, preset_rest = PRESETS[exchange]
    chosen = symbols or os.environ.get("BINPRICE_SYMBOLS", "").split() or ["BTCUSDT", "ETHUSDT"]
    settings = settings_from(ctx)
    monitor = Monitor(log_format, quiet=quiet, verbose=verbose)
    url = db.resolve_url(settings)
    with db.connect(url) as conn:
        current = db.current_revision(conn)
    if current != migrations.SCHEMA_HEAD:
        migrations.upgrade(url)  # imports Alembic only when there is something to do
        monitor.message(
            "migrated", f"migrated the database at {db.describe(url)} to the newest schema"
        )
    else:
        monitor.message("migrated", f"database at {db.describe(url)} is at the newest schema")
    config = IngestConfig(
        symbols=normalize_symbols(chosen),
        ws_url=ws_base(ws_url or preset_ws),
        rest_url=rest_base(rest_url or preset_rest),
        spool_dir=_ingest_cli.spool_dir(settings.data_dir, url),
        max_trades=max_trades,
        duration=parse_duration(duration).total_seconds() if duration else None,
        backfill_max=backfill_max,
    )
    _ingest_cli.run(config, url, monitor)


def _require_embedded(settings: Settings) -> None:
    if not settings.embedded:
        raise BinpriceError(
            f"a database is configured ({settings.source}); `db start`/`db stop` manage only "
            "the embedded server"
        )


def main() -> None:
    """Console-script entry point: run the app, turning BinpriceErrors into one line."""
    try:
        app()
    except BinpriceError as exc:
        _err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
