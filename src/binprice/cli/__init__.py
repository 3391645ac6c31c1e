"""The `binprice` command line: parse → call the library → render.

The only package that imports Typer. Command bodies stay a few lines; every BinpriceError
becomes one `error: …` line on stderr and a non-zero exit (see `_app.Root.main`). Heavy imports
(Alembic, SQLAlchemy, aiohttp, Rich) happen inside the commands that need them.

One module per group of commands: `_db` (migrations, embedded server), `_queries` (latest, at,
range), `_ingest` (capture; the signals are `_signals`, shared with `_import`), and so on.
What a command shows is its view, in `views/` (`views.queries`, `views.ingest`, …).
Each module has its own Typer app; the root group imports a module only when one of its
commands is looked up (`COMMAND_MODULES`) and converts it with `typer.main.get_command`:
building every command costs more start-up than the query itself. `app`, read from this
package, is the root group with every command loaded; `cli` is the Typer app itself (what
Typer's `CliRunner` invokes).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from binprice.cli._app import cli

__all__ = ["ONE_SHOT", "app", "cli", "command_named", "main"]

#: The commands that ask one question and exit: they run without Python's cycle collector.
#: Importing Typer, psycopg and binprice makes tens of thousands of objects that all live until
#: exit. The collector would walk them again and again while they are made (~5 % of `binprice
#: latest`'s CPU), and once more at exit, where the interpreter's last full collection frees
#: nothing the end of the process would not (~15 %; `python benchmarks/queries.py --only
#: process`). So the collector is off for the run and every object is frozen (`gc.freeze`: left
#: out of collections, the exit's included) when the command is done; the interpreter still
#: shuts down as usual (atexit handlers, flushed streams). A one-shot read makes few cycles.
#: Every other command (capture, import, watch, export, …) runs long or builds much, and keeps
#: the collector.
ONE_SHOT = frozenset({"latest", "at", "range"})


def main() -> None:
    """Console-script entry point (`binprice …`, `python -m binprice …`); the process ends
    after it."""
    one_shot = command_named(sys.argv[1:]) in ONE_SHOT
    if one_shot:
        gc.disable()
    try:
        from binprice.cli._app import main as run

        run()
    finally:
        if one_shot:
            gc.freeze()


def command_named(args: Sequence[str]) -> str | None:
    """The command of a command line: the first argument after the root's own options (only
    `--database-url URL` takes a value); None when there is none."""
    rest = iter(args)
    for arg in rest:
        if arg == "--database-url":
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return None


def __getattr__(name: str) -> Any:
    if name == "cli":
        from binprice.cli._app import cli as typer_app

        return typer_app
    if name == "app":
        import typer

        from binprice.cli._app import app

        with typer.Context(app) as ctx:
            for command in app.list_commands(ctx):
                app.get_command(ctx, command)
        return app
    raise AttributeError(name)
