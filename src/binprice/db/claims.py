"""Which ingest captures which symbols into a database: a session advisory lock per symbol.

A second `binprice ingest` of the same symbols into the same database is safe (each trade is
stored once: the writer skips rows already there), so it is not refused (two processes on
purpose is a way to survive one's host going down); but by accident it doubles the load, and
nothing said so. Each run takes `pg_try_advisory_lock` for each of its symbols on a connection
it holds for the run: a lock another session holds means another run captures that symbol. The
locks go with the connection, so a run that dies leaves none behind. An `--all` run takes one
lock for "every symbol" (`ALL`); it is not compared with runs of named symbols. A claim is of a
symbol in a market: a futures run locks `usdm:BTCUSDT` (spot's keys are the bare names, as before
markets), so a spot and a USD-M capture of BTCUSDT are not taken for the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market

__all__ = ["ALL", "CLAIM_CLASS", "claim_symbols"]

#: The first key of the two-key advisory locks ("bpic" in ASCII): binprice ingest claims.
CLAIM_CLASS = 0x62706963
#: What an `--all` run claims.
ALL = "*"

#: The symbols of the list that another session has claimed (this session's own claims are
#: taken again, which PostgreSQL allows).
CLAIM_SQL = """
SELECT s FROM unnest(%(symbols)s::text[]) AS s
WHERE NOT pg_try_advisory_lock(%(class)s, hashtext(%(prefix)s || s))
ORDER BY s
"""


def claim_prefix(market: Market, kind: TradeKind = DEFAULT_KIND) -> str:
    """What a claim key starts with: nothing for spot, `usdm:` / `coinm:` for futures; and
    `aggTrades:` before it for a capture of aggregate trades (another series of the symbol)."""
    prefix = "" if market is DEFAULT_MARKET else f"{market.value}:"
    return prefix if kind is DEFAULT_KIND else f"{kind.value}:{prefix}"


async def claim_symbols(
    conn: psycopg.AsyncConnection[Any],
    symbols: Sequence[str],
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> list[str]:
    """Claim `symbols` of `market` for the session of `conn` (autocommit, held for the run);
    return those another session holds, which this one could not claim."""
    prefix = claim_prefix(market, kind)
    params = {"symbols": list(symbols), "class": CLAIM_CLASS, "prefix": prefix}
    cursor = await conn.execute(CLAIM_SQL, params)
    return [str(row[0]) for row in await cursor.fetchall()]
