"""Which ingest captures which symbols into a database: a session advisory lock per symbol.

A second `binprice ingest` of the same symbols into the same database is safe (each trade is
stored once: the writer skips rows already there), so it is not refused (two processes on
purpose is a way to survive one's host going down); but by accident it doubles the load, and
nothing said so. Each run takes `pg_try_advisory_lock` for each of its symbols on a connection
it holds for the run: a lock another session holds means another run captures that symbol. The
locks go with the connection, so a run that dies leaves none behind. An `--all` run takes one
lock for "every symbol" (`ALL`); it is not compared with runs of named symbols.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

__all__ = ["ALL", "CLAIM_CLASS", "claim_symbols"]

#: The first key of the two-key advisory locks ("bpic" in ASCII): binprice ingest claims.
CLAIM_CLASS = 0x62706963
#: What an `--all` run claims.
ALL = "*"

#: The symbols of the list that another session has claimed (this session's own claims are
#: taken again, which PostgreSQL allows).
CLAIM_SQL = """
SELECT s FROM unnest(%(symbols)s::text[]) AS s
WHERE NOT pg_try_advisory_lock(%(class)s, hashtext(s))
ORDER BY s
"""


async def claim_symbols(conn: psycopg.AsyncConnection[Any], symbols: Sequence[str]) -> list[str]:
    """Claim `symbols` for the session of `conn` (autocommit, held for the run); return those
    another session holds, which this one could not claim."""
    cursor = await conn.execute(CLAIM_SQL, {"symbols": list(symbols), "class": CLAIM_CLASS})
    return [str(row[0]) for row in await cursor.fetchall()]
