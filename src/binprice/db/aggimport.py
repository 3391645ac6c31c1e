"""The archive import's SQL for aggregate trades: COPY into `agg_trades` with its staging
fallback, and the next stored aggregate id a resumed file starts before.

The loader (`history/_load.py`) runs these on its sync connection. The gaps of aggregate ids
(kind 1) are written and settled by the trades' statements with `kind=` (`db/gaps.py`,
`db/gaprows.py`), in the loader and in the timeline pass (`history/_aggtimeline.py`).
`agg_trades` is not partitioned and keyed by `(market, symbol, agg_id)`, so the probe is a
plain primary-key lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from binprice.db.aggcopy import AGG_STAGE_TABLE, CREATE_AGG_STAGE
from binprice.db.imports import StagedInsert
from binprice.markets import DEFAULT_MARKET, Market

Connection = psycopg.Connection[Any]

#: The columns of an aggregate trade's COPY row (`history._csv.CsvDecoder`'s order).
AGG_COLUMNS = (
    'symbol, agg_id, price, quantity, first_trade_id, last_trade_id, "timestamp", is_buyer_maker'
)
_INSERT_NEW_AGG_SQL = (
    f"INSERT INTO agg_trades ({AGG_COLUMNS}, market) SELECT {AGG_COLUMNS}, market "
    f"FROM {AGG_STAGE_TABLE} ON CONFLICT (market, symbol, agg_id) DO NOTHING"
)
_NEXT_AGG_SQL = (
    "SELECT min(agg_id) FROM agg_trades WHERE market = %s AND symbol = %s AND agg_id >= %s"
)


def agg_copy_columns(market: Market) -> str:
    """The columns of `market`'s COPY rows: spot's leave the market to its default."""
    return AGG_COLUMNS if market is DEFAULT_MARKET else f"market, {AGG_COLUMNS}"


@contextmanager
def copy_agg_trades(conn: Connection, market: Market = DEFAULT_MARKET) -> Iterator[psycopg.Copy]:
    """A `COPY agg_trades FROM STDIN` of `market`'s rows; a stored id raises UniqueViolation."""
    statement = f"COPY agg_trades ({agg_copy_columns(market)}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(statement) as copy:
        yield copy


class AggStagedInsert(StagedInsert):
    """COPY text blocks of aggregate trades inserted through a temporary staging table,
    skipping the ids already stored (another import, live capture)."""

    __slots__ = ()

    create_sql = CREATE_AGG_STAGE
    truncate_sql = f"TRUNCATE {AGG_STAGE_TABLE}"
    insert_sql = _INSERT_NEW_AGG_SQL

    @staticmethod
    def copy_sql(market: Market) -> str:
        return f"COPY {AGG_STAGE_TABLE} ({agg_copy_columns(market)}) FROM STDIN"


def next_stored_agg_id(
    conn: Connection, symbol: str, first_id: int, *, market: Market = DEFAULT_MARKET
) -> int | None:
    """The lowest stored aggregate id of `symbol` in `market` from `first_id` on."""
    row = conn.execute(_NEXT_AGG_SQL, (market.number, symbol, first_id)).fetchone()
    return None if row is None or row[0] is None else int(row[0])
