"""The Click app: the root group (lazy subcommands, the error funnel), the parameters every
command shares, and the entry point.

Plain Click, not Typer: Typer builds its Click commands from the functions' signatures on every
run and costs about 25 ms more to import, a third of what `binprice latest` added to a bare
psycopg script; Click's decorators build each command once, at import, and only the command
being run is imported (`Root.get_command`).

The funnel lives inside the app (the root group's `main`), so every way of running a command —
the console script, `python -m binprice`, Click's `CliRunner` in the tests — turns a failure
into one `error: …` line on stderr and an exit code: the library raises, the CLI decides how
that reads and which code it gets (`EXIT_CODES`).
"""

from __future__ import annotations

import errno
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

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

F = TypeVar("F", bound=Callable[..., Any])

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
    click.echo(message, err=True)


class Argument(click.Argument):
    """A positional parameter whose `--help` row also says when it is required or what its
    default is, as the options' rows do."""

    def __init__(self, param_decls: Sequence[str], **attrs: Any) -> None:
        super().__init__(param_decls, **attrs)
        #: The default as given (Click keeps a sentinel for "none given").
        self.shown_default = attrs.get("default")

    def get_help_record(self, ctx: click.Context) -> tuple[str, str]:
        metavar, text = super().get_help_record(ctx)
        if self.required:
            text += "  [required]"
        elif ctx.show_default and self.shown_default is not None:
            text += f"  [default: {self.shown_default}]"
        return metavar, text


class Group(click.Group):
    """Commands listed in the order they are defined."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


Group.group_class = Group


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
    "status": "_status",
    "db": "_db",
}


class Root(Group):
    """binprice's root group. Subcommands are imported when first looked up (Click's lazy
    subcommands: `binprice latest` imports the query commands and nothing else), and every
    failure is one line and an exit code."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"binprice.cli.{COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

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
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except BinpriceError as exc:
            err(f"error: {exc}")
            code = exit_code(exc)
        except click.exceptions.NoArgsIsHelpError as exc:  # `binprice`, `binprice db`
            click.echo(exc.format_message(), err=True)
            code = exc.exit_code
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


def option(*param_decls: str, **attrs: Any) -> Callable[[F], F]:
    """`click.option`, with the environment variable shown in `--help` when there is one."""
    attrs.setdefault("show_envvar", True)
    return click.option(*param_decls, **attrs)


def flag(*param_decls: str, help: str) -> Callable[[F], F]:
    """An on/off option, off by default."""
    return click.option(*param_decls, is_flag=True, default=False, help=help)


def argument(*param_decls: str, **attrs: Any) -> Callable[[F], F]:
    """`click.argument`, its help row marked like an option's (see `Argument`)."""
    return click.argument(*param_decls, cls=Argument, **attrs)


DATABASE_URL_HELP = (
    "PostgreSQL URL (postgresql://user:password@host:port/db). Default: "
    "$BINPRICE_DATABASE_URL, $DATABASE_URL, a .env file (also POSTGRES_USER/"
    "POSTGRES_PASSWORD/POSTGRES_DB/DB_HOST/DB_PORT), else the embedded server."
)


def database_url_option(f: F) -> F:
    """`--database-url`, accepted after the command as well as before it."""
    return click.option("--database-url", default=None, help=DATABASE_URL_HELP)(f)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"binprice {__version__}")
        ctx.exit()


@click.group(
    "binprice",
    cls=Root,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.option("--database-url", default=None, help=DATABASE_URL_HELP)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version.",
)
@click.pass_context
def app(ctx: click.Context, database_url: str | None) -> None:
    """Capture every Binance trade into PostgreSQL and ask questions of it."""
    ctx.obj = database_url


def settings_from(ctx: click.Context, database_url: str | None = None) -> Settings:
    """The Settings for this invocation: the command's --database-url, else the one given
    before the command, else the environment, .env, the embedded server."""
    url = database_url or ctx.find_root().obj
    return load_settings(url if isinstance(url, str) else None)


def store_from(ctx: click.Context, database_url: str | None = None) -> Store:
    """The library's handle for this invocation (see `settings_from`)."""
    from binprice._store import Store

    return Store(settings_from(ctx, database_url))


#: Metavars people read in --help (not Python types).
TimeMeta = "TS"
DurationMeta = "DURATION"
SYMBOLS_HELP = "Symbols, any case (e.g. btcusdt ETHUSDT). Default: every recorded symbol."


def symbols_argument(f: F) -> F:
    """`[SYMBOL]...`, none meaning every recorded symbol."""
    return argument("symbols", nargs=-1, metavar="[SYMBOL]...", help=SYMBOLS_HELP)(f)


def json_option(f: F) -> F:
    help = "Print a JSON array: one object per symbol, stable keys."
    return flag("--json", "as_json", help=help)(f)


def csv_option(f: F) -> F:
    return flag("--csv", "as_csv", help="Print CSV with a header row.")(f)


TIME_HELP = (
    "ISO 8601 with Z or an offset (naive means UTC), a date (UTC midnight), epoch seconds or "
    "milliseconds, 'now', or relative: -5m, '5m ago'."
)
DURATION_HELP = "500ms, 30s, 1m, 1h30m, 2d, 1w."


def window_options(f: F) -> F:
    """`--last`, `--start`, `--end`: the window, in that order."""
    f = click.option("--end", metavar=TimeMeta, help="Window end, exclusive (default: now).")(f)
    f = click.option("--start", metavar=TimeMeta, help=f"Window start, inclusive: {TIME_HELP}")(f)
    return click.option(
        "--last", metavar=DurationMeta, help=f"The window ending at --end (default now): "
        f"{DURATION_HELP}",
    )(f)  # fmt: skip


EXCHANGES = "binance, binance-us, testnet, data-stream"


def rest_url_option(f: F) -> F:
    return option(
        "--rest-url",
        envvar="BINPRICE_REST_URL",
        default=None,
        help="REST base URL (default: the --exchange preset's, https://api.binance.com).",
    )(f)


def exchange_option(f: F) -> F:
    return option(
        "--exchange", envvar="BINPRICE_EXCHANGE", default="binance", help=f"Preset: {EXCHANGES}."
    )(f)


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
