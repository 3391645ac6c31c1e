"""The Typer app, the options every command shares, the global callback and the error funnel.

The funnel lives inside the app (its group class), so every way of running a command — the
console script, `python -m binprice`, typer's `CliRunner` in the tests — turns a failure into
one `error: …` line on stderr and an exit code: the library raises, the CLI decides how that
reads and which code it gets (`EXIT_CODES`).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperGroup

from binprice import __version__
from binprice.errors import (
    AbortedError,
    BinpriceError,
    ConfigError,
    NotFoundError,
    SymbolError,
    UsageError,
)
from binprice.settings import Settings, load_settings

if TYPE_CHECKING:
    from binprice._store import Store

#: Exit codes by error class (the nearest class in the MRO wins); anything else exits 1.
EXIT_CODES: dict[type[BinpriceError], int] = {
    ConfigError: 2,
    UsageError: 2,
    SymbolError: 2,
    NotFoundError: 1,
    AbortedError: 130,
}
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def exit_code(exc: BinpriceError) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES and issubclass(cls, BinpriceError):
            return EXIT_CODES[cls]
    return 1


def err(message: str) -> None:
    """One line on stderr."""
    typer.echo(message, err=True)


class _Funnel(TyperGroup):
    """binprice's root group: every failure is one line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
            code = result if isinstance(result, int) else 0
            if code == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into Exit(130)
                err("interrupted")
        except BinpriceError as exc:
            err(f"error: {exc}")
            code = exit_code(exc)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "binprice"
            err(f"error: {' '.join(exc.format_message().split())} (see `{where} --help`)")
            code = EXIT_USAGE
        except click.ClickException as exc:
            err(f"error: {' '.join(exc.format_message().split())}")
            code = exc.exit_code
        except (click.Abort, KeyboardInterrupt):
            err("interrupted")
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            raise  # a closed pipe downstream is not binprice's error to explain
        except OSError as exc:  # the environment, not a bug: a read-only or full disk
            err(f"error: {os_error_line(exc)}")
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="binprice",
    cls=_Funnel,
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


def settings_from(ctx: typer.Context, database_url: str | None = None) -> Settings:
    """The Settings for this invocation: the command's --database-url, else the one given
    before the command, else the environment, .env, the embedded server."""
    url = database_url or ctx.find_root().obj
    return load_settings(url if isinstance(url, str) else None)


def store_from(ctx: typer.Context, database_url: str | None = None) -> Store:
    """The library's handle for this invocation (see `settings_from`)."""
    from binprice._store import Store

    return Store(settings_from(ctx, database_url))


#: Metavars people read in --help (not Python types).
TimeMeta = "TS"
DurationMeta = "DURATION"
SymbolsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[SYMBOL]...",
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


EXCHANGES = "binance, binance-us, testnet, data-stream"
RestUrlOption = Annotated[
    str | None,
    typer.Option(
        "--rest-url",
        envvar="BINPRICE_REST_URL",
        help="REST base URL (default: the --exchange preset's, https://api.binance.com).",
        show_default=False,
    ),
]
ExchangeOption = Annotated[
    str,
    typer.Option("--exchange", envvar="BINPRICE_EXCHANGE", help=f"Preset: {EXCHANGES}."),
]


#: Which module registers each top-level command.
COMMAND_MODULES = {
    "ingest": "_ingest",
    "import": "_import",
    "latest": "_queries",
    "at": "_queries",
    "range": "_queries",
    "gaps": "_gaps",
    "candles": "_explore",
    "chart": "_explore",
    "export": "_explore",
    "watch": "_explore",
    "exchange": "_exchange",
    "status": "_status",
    "db": "_db",
}
#: Registration order, which is also the order `binprice --help` lists them in.
_ALL_MODULES = (
    "_ingest",
    "_import",
    "_queries",
    "_gaps",
    "_explore",
    "_exchange",
    "_status",
    "_db",
)


def register(command: str | None) -> None:
    """Import the module defining `command` (every module when None or unknown)."""
    import importlib

    module = COMMAND_MODULES.get(command or "")
    for name in (module,) if module else _ALL_MODULES:
        importlib.import_module(f"binprice.cli.{name}")


def invoked_command(args: list[str]) -> str | None:
    """The top-level command in `args`, skipping the global options; None if there is none."""
    rest = iter(args)
    for arg in rest:
        if arg == "--database-url":
            next(rest, None)  # its value
        elif arg in ("-h", "--help", "--version"):
            return None
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Console-script entry point: register the command group it runs and run the app; the
    library's notices (its log records, e.g. "started the embedded server") are lines on
    stderr."""
    register(invoked_command(sys.argv[1:]))
    show_notices()
    app()


#: What to do about the OS errors a user can fix.
_OS_ERROR_HINTS = {
    errno.EACCES: "make it writable, or set BINPRICE_DATA_DIR to a writable directory",
    errno.EPERM: "make it writable, or set BINPRICE_DATA_DIR to a writable directory",
    errno.EROFS: "it is on a read-only file system; set BINPRICE_DATA_DIR to a writable directory",
    errno.ENOSPC: "free some space on its file system",
}


def os_error_line(exc: OSError) -> str:
    """One line for an OS error: what, where, and what to do when that is clear."""
    what = exc.strerror or exc.__class__.__name__
    if exc.filename is None:
        return what
    hint = _OS_ERROR_HINTS.get(exc.errno or 0)
    return f"{what}: {exc.filename}" + (f"; {hint}" if hint else "")


def show_notices() -> None:
    """binprice's INFO log records as plain lines on stderr (once per process)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("binprice")
    if not logger.handlers:  # main() may run more than once in a process (tests)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
