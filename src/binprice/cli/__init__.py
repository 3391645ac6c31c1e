"""The `binprice` command line: parse → call the library → render.

The only package that imports typer. Command bodies stay a few lines; every BinpriceError
becomes one `error: …` line on stderr and a non-zero exit (see `main`). Heavy imports
(Alembic, SQLAlchemy, aiohttp, Rich) happen inside the commands that need them.

One module per group of commands: `_db` (migrations, embedded server), `_queries` (latest, at,
range, gaps), `_ingest` (capture; the event loop and signals are in `_ingest_run`).
"""

from binprice.cli import _db, _ingest, _queries  # noqa: F401  (importing registers the commands)
from binprice.cli._app import app, main

__all__ = ["app", "main"]
