"""Database access: where the database is, connecting with clear errors, the schema check.

psycopg 3 is used directly for everything but migrations: it imports fast, which matters for
`binprice latest` typed dozens of times a day. Error messages name host and port and never a
secret (`conninfo.redact`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from binprice.conninfo import is_keyword_form, keywords_to_url, parse_keywords, redact
from binprice.errors import DatabaseUnavailableError, SchemaOutdatedError
from binprice.migrations import SCHEMA_HEAD
from binprice.settings import Settings

if TYPE_CHECKING:
    import psycopg

    from binprice.embedded import ServerStatus

CONNECT_TIMEOUT_SECONDS = 5
UPGRADE_HINT = "run `binprice db upgrade`"


def resolve_url(settings: Settings) -> str:
    """The configured database URL, else the embedded server's (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url
    from binprice import embedded

    info = embedded.ensure_server(settings.data_dir)
    if info.started:
        import logging

        # A notice, not output: the CLI shows binprice's log records as lines on stderr.
        logging.getLogger(__name__).info(embedded.running_notice(info))
    return info.url()


def describe(url: str) -> str:
    """`host:port/db` (or the socket directory) for messages; never the password."""
    if is_keyword_form(url):  # settings normalises these, but the library may be given one
        try:
            url = keywords_to_url(parse_keywords(url))
        except ValueError:
            return redact(url)
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host") or ["localhost"])[0]
        port = parts.port or int((query.get("port") or ["5432"])[0])
    except ValueError:
        return redact(url)
    database = unquote(parts.path.lstrip("/")) or "(default)"
    return redact(f"{host}:{port}/{database}", url)


def database_error(url: str, exc: BaseException) -> DatabaseUnavailableError:
    """Turn a driver error into one line naming where we tried to connect."""
    # libpq never echoes passwords, but a URL the user typed may end up in the text.
    reason = redact(" ".join(str(exc).split()) or exc.__class__.__name__, url)
    return DatabaseUnavailableError(f"cannot reach PostgreSQL at {describe(url)}: {reason}")


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """Open a psycopg connection, or raise DatabaseUnavailableError with a one-line reason."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except (psycopg.Error, ValueError) as exc:
        raise database_error(url, exc) from None


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
        raise SchemaOutdatedError(f"the database at {where} has no binprice schema; {UPGRADE_HINT}")
    from binprice.migrations import script_location

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


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    """What `binprice db info` shows. For the embedded server, `embedded` says whether it runs;
    a stopped one is not started, so the fields that need a connection are None."""

    source: str
    url: str | None
    location: str
    server_version: str | None
    revision: str | None
    head: str
    trades: int | None
    trades_exact: bool
    embedded: ServerStatus | None = None


#: Above this estimated size, `db info` reports the planner's estimate instead of count(*).
EXACT_COUNT_LIMIT = 1_000_000


def database_info(settings: Settings) -> DatabaseInfo:
    """Describe the database: where it is, its server version, revision and size. An embedded
    server that is not running is described as such, not started."""
    status = None
    if settings.database_url is not None:
        url: str | None = settings.database_url
        location = describe(settings.database_url)
    else:
        from binprice import embedded

        status = embedded.server_status(settings.data_dir)
        url = status.server.url() if status.server is not None else None
        location = "embedded server"
    if url is None:
        return DatabaseInfo(
            settings.source, None, location, None, None, SCHEMA_HEAD, None, True, status
        )
    with connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        revision = current_revision(conn)
        trades, exact = _trade_count(conn)
    return DatabaseInfo(
        source=settings.source,
        url=redact(url),
        location=location,
        server_version=str(version[0]) if version else "?",
        revision=revision,
        head=SCHEMA_HEAD,
        trades=trades,
        trades_exact=exact,
        embedded=status,
    )


def _trade_count(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int | None, bool]:
    row = conn.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('trades')"
    ).fetchone()
    if row is None:
        return None, True
    estimate = int(row[0])  # type: ignore[call-overload]
    if estimate > EXACT_COUNT_LIMIT:
        return estimate, False
    count = conn.execute("SELECT count(*) FROM trades").fetchone()
    return (int(count[0]) if count else 0), True  # type: ignore[call-overload]
