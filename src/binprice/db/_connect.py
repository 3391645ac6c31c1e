"""Where the database is, and connecting to it with clear errors (sync and async).

psycopg 3 is used directly for everything but migrations: it imports fast, which matters for
`binprice latest` typed dozens of times a day. Error messages name host and port and never a
secret (`conninfo.redact`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from binprice.conninfo import is_keyword_form, keywords_to_url, parse_keywords, redact
from binprice.errors import DatabaseUnavailableError
from binprice.settings import Settings

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_SECONDS = 5


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


#: How libpq words a failure the server itself reported while we connected (it answered).
_SERVER_SAID = "FATAL:"


def database_error(url: str, exc: BaseException) -> DatabaseUnavailableError:
    """Turn a driver error into one line naming where we tried to connect: "cannot reach" only
    when nothing answered; a server that answered and refused says so (and what to check)."""
    # libpq never echoes passwords, but a URL the user typed may end up in the text.
    reason = redact(" ".join(str(exc).split()) or exc.__class__.__name__, url)
    where = describe(url)
    said = reason.partition(_SERVER_SAID)[2].strip()
    if not said:
        return DatabaseUnavailableError(f"cannot reach PostgreSQL at {where}: {reason}")
    pgconn = getattr(exc, "pgconn", None)
    if getattr(pgconn, "used_password", False) and "authentication failed" in said:
        return DatabaseUnavailableError(
            f"PostgreSQL at {where} refused the password ({said}): check the user and password "
            "in the database URL (or POSTGRES_USER/POSTGRES_PASSWORD)"
        )
    return DatabaseUnavailableError(f"PostgreSQL at {where} refused the connection: {said}")


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """Open a psycopg connection, or raise DatabaseUnavailableError with a one-line reason."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except (psycopg.Error, ValueError) as exc:
        raise database_error(url, exc) from None


async def connect_async(
    url: str, *, autocommit: bool = True
) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """`connect`, for the event loop (the ingest's writers and gap rows)."""
    import psycopg

    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
    except (psycopg.Error, ValueError) as exc:
        raise database_error(url, exc) from None
