"""Alembic environment for binprice.

`binprice db upgrade` passes a live connection in `config.attributes["connection"]`; the plain
`alembic` command (developers, from a checkout) resolves the database like binprice does.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, text

from binprice.db.migrations import sqlalchemy_url
from binprice.db.schema import MIGRATION_LOCK_KEY
from binprice.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        # Two binprice processes (say, two `ingest` starting together) must not both migrate.
        context.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    from binprice.db import resolve_url
    from binprice.settings import load_settings

    engine = create_engine(sqlalchemy_url(resolve_url(load_settings())))
    with engine.begin() as conn:
        run_migrations(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("binprice migrations run online only: `binprice db upgrade`")
run_migrations_online()
