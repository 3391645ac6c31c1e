"""The schema this binprice expects, and the check every read makes against it.

Read commands compare the database's Alembic revision with `SCHEMA_HEAD` in one round trip and
without importing Alembic (see `migrations` for the driver).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from binprice.db._connect import connect, describe, resolve_url
from binprice.errors import BinpriceError, SchemaOutdatedError
from binprice.settings import Settings

if TYPE_CHECKING:
    import psycopg

#: The newest revision this binprice knows. Read commands compare the database with it without
#: importing Alembic; a test keeps it equal to the head of `alembic/versions`.
SCHEMA_HEAD = "0013_agg_trades"
#: pg_advisory_xact_lock key taken around every migration ("binprice" in ASCII, truncated).
MIGRATION_LOCK_KEY = 0x62696E7072696365
UPGRADE_HINT = "run `binprice db upgrade`"
#: What a brand-new database (binprice never wrote to it) says to a read: nothing is wrong, there
#: is just nothing yet. Reads do not migrate it themselves: a read-only role may run them.
NEW_DATABASE_HINT = (
    "has no trades yet (binprice never wrote to it): `binprice ingest BTCUSDT` creates the "
    "schema and captures trades until Ctrl+C (`binprice db upgrade` creates only the schema)"
)


def script_location() -> Path:
    """Where the revisions are: inside the installed package, else the checkout's `alembic/`."""
    packaged = Path(__file__).parents[1] / "alembic"
    if (packaged / "env.py").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "alembic"
    if (checkout / "env.py").is_file():
        return checkout
    raise BinpriceError(
        "binprice's migrations are missing from this installation; reinstall binprice"
    )


def current_revision(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """The database's Alembic revision, or None for a database binprice never migrated."""
    import psycopg

    try:
        # One round trip on the fast path of every read command; a database binprice never
        # migrated has no alembic_version table at all.
        row = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
    except psycopg.errors.UndefinedTable:
        if not conn.autocommit:
            conn.rollback()
        return None
    return None if row is None or row[0] is None else str(row[0])


def check_schema(conn: psycopg.Connection[tuple[object, ...]], url: str) -> None:
    """Raise SchemaOutdatedError unless the database is at this binprice's head revision."""
    revision = current_revision(conn)
    if revision == SCHEMA_HEAD:
        return
    where = describe(url)
    if revision is None:
        raise SchemaOutdatedError(f"the database at {where} {NEW_DATABASE_HINT}")
    known = {p.stem for p in (script_location() / "versions").glob("*.py")}
    if revision in known:
        raise SchemaOutdatedError(
            f"the database at {where} is at revision {revision}, behind {SCHEMA_HEAD}; "
            f"{UPGRADE_HINT}"
        )
    raise SchemaOutdatedError(
        f"the database at {where} is at revision {revision}, which this binprice does not know; "
        "upgrade binprice"
    )


def connect_for_reading(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    """Connect for a read command: resolve the database, connect, check the schema is current."""
    url = resolve_url(settings)
    conn = connect(url)
    try:
        check_schema(conn, url)
    except BaseException:
        conn.close()
        raise
    return conn
