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

from typing import Any

from binprice.cli._app import cli, main

__all__ = ["app", "cli", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        import typer

        from binprice.cli._app import app

        with typer.Context(app) as ctx:
            for command in app.list_commands(ctx):
                app.get_command(ctx, command)
        return app
    raise AttributeError(name)
