"""`binprice db info`: where the database is, its server version, revision and size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from binprice.conninfo import redact
from binprice.db._connect import connect, describe
from binprice.db.schema import SCHEMA_HEAD, current_revision
from binprice.settings import Settings

if TYPE_CHECKING:
    import psycopg

    from binprice.db.status import MonthStatus
    from binprice.embedded import ServerStatus


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
    #: Per month with trades: rows or compressed, trades, bytes (see `db.status`).
    months: tuple[MonthStatus, ...] = ()


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
        months = _months(conn) if revision == SCHEMA_HEAD else ()
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
        months=months,
    )


def _months(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[MonthStatus, ...]:
    from binprice.db.status import month_states

    return tuple(month_states(conn))


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
