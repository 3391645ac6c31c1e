"""Alembic driven from code: upgrade, downgrade, history.

The revisions live in the top-level `alembic/` directory of a checkout and are shipped inside the
wheel as `binprice/alembic`, so a pipx user can migrate without the repository. Importing this
module does not import Alembic; only the functions that migrate do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from binprice.db.schema import script_location
from binprice.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config


@dataclass(frozen=True, slots=True)
class Revision:
    """One Alembic revision, as `binprice db history` lists it."""

    revision: str
    down_revision: str | None
    message: str
    is_head: bool
    is_current: bool


def sqlalchemy_url(url: str) -> str:
    """A libpq URL as a SQLAlchemy URL that uses psycopg 3."""
    _scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep else url


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    return cfg


def _run(url: str, action: str, revision: str) -> str | None:
    from alembic import command
    from alembic.migration import MigrationContext
    from alembic.util import CommandError
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

    from binprice.db import CONNECT_TIMEOUT_SECONDS, database_error

    cfg = alembic_config()
    # A server that accepts the connection and never answers must not hang the migration.
    engine = create_engine(
        sqlalchemy_url(url),
        poolclass=_null_pool(),
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
            reached: str | None = MigrationContext.configure(conn).get_current_revision()
        return reached
    except CommandError as exc:
        raise DatabaseError(f"cannot {action} to {revision!r}: {exc}") from None
    except OperationalError as exc:  # could not connect, or the connection broke
        raise database_error(url, exc.orig or exc) from None
    except SQLAlchemyError as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        detail = " ".join(str(cause).split())
        raise DatabaseError(f"cannot {action} to {revision!r}: {detail}") from None
    finally:
        engine.dispose()


def _null_pool() -> type:
    from sqlalchemy.pool import NullPool

    return NullPool


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate up to `revision` (default: the newest) under an advisory lock; return the
    revision reached."""
    return _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> str | None:
    """Migrate down to `revision` (`base` removes binprice's tables); return the revision
    reached (None for base)."""
    return _run(url, "downgrade", revision)


def history(current: str | None) -> list[Revision]:
    """All revisions, newest first, marking the head and the database's current one."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    out = []
    for rev in script.walk_revisions():
        down = rev.down_revision
        out.append(
            Revision(
                revision=rev.revision,
                down_revision=down if isinstance(down, str) or down is None else ",".join(down),
                message=(rev.doc or "").strip().splitlines()[0] if rev.doc else "",
                is_head=rev.revision in heads,
                is_current=rev.revision == current,
            )
        )
    return out
