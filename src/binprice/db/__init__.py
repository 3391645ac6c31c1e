"""Storage: one home for everything that talks to PostgreSQL.

- `_connect`: where the database is (`resolve_url`), connecting (sync and async) with one-line
  errors that never show a secret;
- `schema`: the head revision and the check every read makes; `migrations`: the Alembic driver;
- `queries` (latest, at, range), `candles`, `gaps` (recorded gaps, the completeness check and
  its SQL), `copy` (COPY encoding of trades), `info` (`db info`).

Importing this package imports neither psycopg nor Alembic.
"""

from binprice.db._connect import (
    CONNECT_TIMEOUT_SECONDS,
    connect,
    connect_async,
    database_error,
    describe,
    resolve_url,
)
from binprice.db.schema import SCHEMA_HEAD, check_schema, connect_for_reading, current_revision

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "SCHEMA_HEAD",
    "check_schema",
    "connect",
    "connect_async",
    "connect_for_reading",
    "current_revision",
    "database_error",
    "describe",
    "resolve_url",
]
