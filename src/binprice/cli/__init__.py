"""The `binprice` command line: parse → call the library → render.

The only package that imports typer. Command bodies stay a few lines; every BinpriceError
becomes one `error: …` line on stderr and a non-zero exit (see `main`). Heavy imports
(Alembic, SQLAlchemy, aiohttp, Rich) happen inside the commands that need them.

One module per group of commands: `_db` (migrations, embedded server), `_queries` (latest, at,
range, gaps), `_ingest` (capture; the event loop and signals are in `_ingest_run`). Importing a
module registers its commands on the shared app. `main` registers only the group it is about to
run (click's "lazy subcommands" idea): building every command's parameters costs more start-up
than the query itself. `app`, read from this package, has every command.
"""

from __future__ import annotations

from typing import Any

from binprice.cli._app import main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from binprice.cli._app import app, register

        register(None)
        return app
    raise AttributeError(name)
