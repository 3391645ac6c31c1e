"""The Typer app: the root group (lazy subcommands, the error funnel), the parameters every
command shares (as `Annotated` aliases, so a flag reads the same in every command), and the
entry point.

Commands are Typer functions in one module per group of commands, each module with its own
`typer.Typer()`. The root group (`Root`, a `typer.core.TyperGroup` given with `cls=`) lists
the command names and, when one is looked up, imports only that command's module and converts
its Typer app with `typer.main.get_command`: building every command costs more start-up than
the query itself. Only Typer's public API is used.

The funnel lives inside the app (the root group's `main`), so every way of running a command —
the console script, `python -m binprice`, a `CliRunner` in the tests — turns a failure into one
`error: …` line on stderr and an exit code: the library raises, the CLI decides how that reads
and which code it gets (`EXIT_CODES`). A command whose output has a format of its own
(`ingest --log-format json`) has the funnel write the line in that format instead
(`errors_written_by`); the exit code is the same.
"""

from __future__ import annotations

import errno
import importlib
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

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

#: What Typer converts a module's commands to: one command, or a group of them (`db`).
Command = TyperCommand | TyperGroup

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


def _plain_error(message: str) -> None:
    err(f"error: {message}")


#: How the funnel writes a BinpriceError: `error: …` unless the running command chose otherwise.
_error_writer: ContextVar[Callable[[str], None]] = ContextVar("error_writer", default=_plain_error)


def errors_written_by(write: Callable[[str], None]) -> None:
    """From now until this command ends, the funnel hands an error's message to `write` (one
    line in the command's log format) instead of printing `error: …`."""
    _error_writer.set(write)


#: Which module defines each top-level command, in the order `binprice --help` lists them.
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
    "archive": "_exchange",
    "demo": "_demo",
    "status": "_status",
    "db": "_db",
}


def command_app(**settings: Any) -> typer.Typer:
    """A module's own Typer app: its commands, as plain as the root's help (no Rich markup,
    no pretty tracebacks: the funnel decides how a failure reads)."""
    settings.setdefault("add_completion", False)
    return typer.Typer(
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        suggest_commands=False,
        context_settings=CONTEXT_SETTINGS,
        **settings,
    )


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "show_default": True}


def help_without_command(ctx: typer.Context) -> None:
    """`binprice` and `binprice db` alone print their help (on stderr, exit 2, as a usage
    error would); anything else without a command is the usage error it always was."""
    if ctx.invoked_subcommand is not None:
        return
    if any(value is not None for value in ctx.params.values()):
        raise UsageError(f"Missing command. (see `{ctx.command_path} --help`)")
    typer.echo(ctx.get_help(), err=True)
    raise typer.Exit(EXIT_USAGE)


class Root(TyperGroup):
    """binprice's root group. A subcommand's module is imported when the command is first looked
    up (`binprice latest` imports the query commands and nothing else), and every failure is one
    line and an exit code.

    The contexts are typed `Any`: the base methods are typed with Typer's vendored Click, whose
    context class is not public (`typer.Context` is a subclass of it)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in COMMAND_MODULES:
            module = importlib.import_module(f"binprice.cli.{COMMAND_MODULES[cmd_name]}")
            found = command_of(module.commands, cmd_name)
            self.add_command(found, cmd_name)
        assert found is None or isinstance(found, Command)
        return found

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Typer would make it a silent exit 130
            raise typer.Abort() from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        _error_writer.set(_plain_error)  # a CliRunner runs many commands in one thread
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except BinpriceError as exc:
            _error_writer.get()(str(exc))
            code = exit_code(exc)
        except (typer.Abort, KeyboardInterrupt):
            err("interrupted")
            code = EXIT_INTERRUPTED
        except typer.TyperException as exc:  # Typer's own: usage errors are exit 2
            line = f"error: {' '.join(exc.format_message().split())}"
            if exc.exit_code == EXIT_USAGE:
                ctx = getattr(exc, "ctx", None)
                line += f" (see `{ctx.command_path if ctx is not None else 'binprice'} --help`)"
            err(line)
            code = exc.exit_code
        except BrokenPipeError:
            raise  # a closed pipe downstream is not binprice's error to explain
        except OSError as exc:  # the environment, not a bug: a read-only or full disk
            err(f"error: {os_error_line(exc)}")
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def command_of(module_commands: typer.Typer, name: str) -> Command:
    """The command `name` of a module's Typer app, converted by Typer.

    A module of plain commands (`_queries`: latest, at, range) has the one asked for converted
    alone, as a Typer app holding only it: converting each command reads its function's
    signature and builds its parameters, 0.5 to 1 ms of start-up per command. A module with a
    group or a callback (`db`) converts whole."""
    if not (module_commands.registered_groups or module_commands.registered_callback):
        for info in module_commands.registered_commands:
            if (
                info.callback is not None
                and (info.name or typer.main.get_command_name(info.callback.__name__)) == name
            ):
                alone = command_app()
                alone.registered_commands.append(info)
                converted = typer.main.get_command(alone)
                assert isinstance(converted, Command)
                return converted
    converted = typer.main.get_command(module_commands)
    if isinstance(converted, TyperGroup) and converted.name != name:
        converted = converted.commands[name]
    assert isinstance(converted, Command)
    return converted


#: The metavar of free text (what Click printed for `str`; Typer would print `<str>`).
TEXT = "TEXT"

DATABASE_URL_HELP = (
    "PostgreSQL URL (postgresql://user:password@host:port/db). Default: "
    "$BINPRICE_DATABASE_URL, $DATABASE_URL, a .env file (also POSTGRES_USER, "
    "POSTGRES_PASSWORD, POSTGRES_DB, DB_HOST, DB_PORT), else the embedded server."
)

#: `--database-url`, accepted after the command as well as before it.
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", metavar=TEXT, help=DATABASE_URL_HELP)
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"binprice {__version__}")
        raise typer.Exit()


cli = typer.Typer(
    name="binprice",
    cls=Root,
    help="Capture every Binance trade into PostgreSQL and ask questions of it.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    suggest_commands=False,
    invoke_without_command=True,
    context_settings=CONTEXT_SETTINGS,
)


@cli.callback()
def root(
    ctx: typer.Context,
    database_url: DatabaseUrl = None,
    version: Annotated[
        bool | None,
        typer.Option("--version", is_eager=True, callback=_version, help="Show the version."),
    ] = None,
) -> None:
    ctx.obj = database_url
    help_without_command(ctx)


def root_group() -> Root:
    """The root group as Typer builds it from `cli` (commands are added as they are looked up)."""
    group = typer.main.get_command(cli)
    assert isinstance(group, Root)
    return group


#: What the console script, `python -m binprice` and the process-level tests run.
app = root_group()


def settings_from(ctx: typer.Context, database_url: str | None = None) -> Settings:
    """The Settings for this invocation: the command's --database-url, else the one given
    before the command, else the environment, .env, the embedded server."""
    url = database_url or ctx.find_root().obj
    return load_settings(url if isinstance(url, str) else None)


def store_from(ctx: typer.Context, database_url: str | None = None) -> Store:
    """The library's handle for this invocation (see `settings_from`)."""
    from binprice._store import Store

    return Store(settings_from(ctx, database_url))


MARKET_HELP = (
    "The Binance market: spot, usdm (USD-M futures) or coinm (COIN-M futures). Default: "
    "$BINPRICE_MARKET, from the environment or a .env file, else spot."
)
#: `--market`: BTCUSDT on Spot and the BTCUSDT USD-M perpetual are different series.
MarketOption = Annotated[
    str | None,
    typer.Option(
        "--market", envvar="BINPRICE_MARKET", metavar="MARKET", help=MARKET_HELP, show_default=False
    ),
]


KIND_HELP = (
    "The series: trades (default) or aggTrades, Binance's aggregate trades (one row per taker "
    "order and price; docs/aggregate-trades.md)."
)
#: `--kind`: a symbol's trades and its aggregate trades are two series with their own ids.
#: No environment variable: a default changed elsewhere would switch every answer's series.
KindOption = Annotated[
    str, typer.Option("--kind", metavar="KIND", help=KIND_HELP, show_default=False)
]


API_KEY_HELP = (
    "A Binance API key (read permission, no secret) for the futures markets' historicalTrades: "
    "without one, history older than the newest 1000 trades is not fetched. Never printed."
)
#: `--api-key`: sent on the futures' historicalTrades only, never shown.
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        envvar="BINPRICE_API_KEY",
        metavar="KEY",
        help=API_KEY_HELP,
        show_default=False,
        show_envvar=True,
    ),
]


def market_from(given: str | None) -> str:
    """The market of this invocation (`spot`, `usdm` or `coinm`): the flag or environment,
    else `.env`, else spot; an unknown name is refused before anything is read."""
    from binprice.markets import parse_market
    from binprice.settings import market_setting

    return parse_market(market_setting(given)).value


#: Metavars people read in --help (not Python types).
TimeMeta = "TS"
DurationMeta = "DURATION"
SYMBOLS_HELP = "Symbols, any case (e.g. btcusdt ETHUSDT). Default: every recorded symbol."

#: `[SYMBOL]...`, none meaning every recorded symbol.
Symbols = Annotated[
    list[str] | None,
    typer.Argument(metavar="[SYMBOL]...", help=SYMBOLS_HELP, show_default=False),
]
#: `SYMBOL...`, at least one.
RequiredSymbols = Annotated[
    list[str],
    typer.Argument(metavar="SYMBOL...", help="Symbols, any case (e.g. btcusdt ETHUSDT)."),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print a JSON array: one object per symbol, stable keys.")
]
Csv = Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")]

TIME_HELP = (
    "ISO 8601 with Z or an offset (naive means UTC), a date (UTC midnight), epoch seconds or "
    "milliseconds, 'now', or relative: -5m, '5m ago'."
)
DURATION_HELP = "500ms, 30s, 1m, 1h30m, 2d, 1w."

#: The window: `--last`, `--start`, `--end`, in that order.
Last = Annotated[
    str | None,
    typer.Option(
        metavar=DurationMeta, help=f"The window ending at --end (default now): {DURATION_HELP}"
    ),
]
Start = Annotated[
    str | None, typer.Option(metavar=TimeMeta, help=f"Window start, inclusive: {TIME_HELP}")
]
End = Annotated[
    str | None, typer.Option(metavar=TimeMeta, help="Window end, exclusive (default: now).")
]

EXCHANGES = "binance, binance-us, testnet, data-stream"
#: The archive service's default, as `--help` shows it (the library's is history's).
ARCHIVE_URL_SHOWN = "https://data.binance.vision"


def url_option(envvar: str, help: str, shown_default: str) -> Any:
    """A service's base URL: from the environment too, its default shown as a URL."""
    return typer.Option(envvar=envvar, metavar="URL", help=help, show_default=shown_default)


RestUrl = Annotated[
    str | None,
    typer.Option(
        envvar="BINPRICE_REST_URL",
        metavar=TEXT,
        help="REST base URL (default: the --exchange preset's, https://api.binance.com).",
    ),
]
Exchange = Annotated[
    str, typer.Option(envvar="BINPRICE_EXCHANGE", metavar=TEXT, help=f"Preset: {EXCHANGES}.")
]


def main() -> None:
    """Console-script entry point; the library's notices (its log records, e.g. "started the
    embedded server") are lines on stderr."""
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
