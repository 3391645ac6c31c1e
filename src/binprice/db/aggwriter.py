"""The aggregate trade writer (`ingest --stream aggTrade`): aggregates → `agg_trades`, exactly once.

`TradeWriter`'s way, on the aggregate table: `COPY agg_trades FROM STDIN` in one transaction per
batch; when the primary key `(market, symbol, agg_id)` rejects it (an aggregate already stored),
the batch goes through a staging table with `INSERT … ON CONFLICT DO NOTHING`. A COMMIT whose
answer was lost is settled by `TradeWriter.settle` (the transaction's status, then the rows it
inserted, counted here in `agg_trades`). The table is not partitioned, so there is no month to
wait for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from binprice.db.aggcopy import (
    AGG_ROWS_OF_XID,
    COPY_AGG_STAGE,
    COPY_AGG_TRADES,
    CREATE_AGG_STAGE,
    INSERT_AGG_FROM_STAGE,
    LAST_AGG_TRADES_SQL,
)
from binprice.db.copy import Batch
from binprice.db.liverollup import MinuteRow
from binprice.db.writer import TradeWriter
from binprice.kinds import TradeKind
from binprice.markets import DEFAULT_MARKET, Market

if TYPE_CHECKING:
    import psycopg


class AggTradeWriter(TradeWriter):
    """Owns one psycopg async connection and writes batches of aggregate trades of one market
    (`db.aggcopy.AggCopyEncoder`'s rows) through it."""

    create_stage_sql = CREATE_AGG_STAGE
    insert_from_stage_sql = INSERT_AGG_FROM_STAGE

    def __init__(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], market: Market = DEFAULT_MARKET
    ) -> None:
        super().__init__(conn, market)
        self._copy_stage = COPY_AGG_STAGE

    def _copy_into(self, partition: str | None) -> str:
        return COPY_AGG_TRADES

    async def _parts(self, batch: Batch) -> list[tuple[str | None, bytes, list[MinuteRow]]]:
        """The whole batch in one COPY: `agg_trades` has no partitions and no rollup."""
        return [(None, batch.payload, [])]

    async def _rows_of(
        self, cur: psycopg.AsyncCursor[tuple[object, ...]], batch: Batch, xmin: int
    ) -> dict[str, int]:
        records = batch.decoded()
        keys = ([r.symbol for r in records], [r.trade_id for r in records])
        await cur.execute(AGG_ROWS_OF_XID, (*keys, self.market.number, xmin))
        return {str(s): int(n) for s, n in await cur.fetchall()}  # type: ignore[call-overload]

    async def last_trades(self, symbols: tuple[str, ...]) -> dict[str, tuple[int, int]]:
        """Per symbol with stored aggregates of this writer's market, the highest stored
        aggregate id and its time (epoch ms): one backward primary-key probe per symbol."""
        async with self._conn.cursor() as cur:
            await cur.execute(LAST_AGG_TRADES_SQL, (list(symbols), self.market.number))
            rows = await cur.fetchall()
        return {str(s): (int(i), int(t)) for s, i, t in rows}  # type: ignore[call-overload]


def writer_class(kind: TradeKind) -> type[TradeWriter]:
    """The writer of `kind`: trades, or aggregate trades."""
    return AggTradeWriter if kind is TradeKind.AGG_TRADES else TradeWriter
