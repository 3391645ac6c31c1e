"""The batch writer: trades → PostgreSQL with COPY, exactly once, a commit as the only ack.

Fast path: `COPY trades FROM STDIN` straight into the table, one transaction per batch. The
reader already drops trades it has seen, so a batch almost never holds a stored trade; when one
does (another ingestor, a restart race, a backfill overlap) the primary key rejects the COPY and
the batch is written again through a temporary staging table with `INSERT … ON CONFLICT DO
NOTHING`. Either way a re-delivered trade never creates a second row.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from binprice.db.copy import COPY_STAGE, COPY_TRADES, CREATE_STAGE, INSERT_FROM_STAGE, Batch

if TYPE_CHECKING:
    import psycopg


class TradeWriter:
    """Owns one psycopg async connection and writes batches through it."""

    def __init__(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        self._conn = conn
        self._stage_ready = False

    @classmethod
    async def connect(cls, url: str) -> TradeWriter:
        from binprice.db import connect_async

        return cls(await connect_async(url))

    async def close(self) -> None:
        await self._conn.close()

    @property
    def closed(self) -> bool:
        return self._conn.closed

    async def write(self, batch: Batch) -> tuple[dict[str, int], int]:
        """Store `batch`; return new rows per symbol and the commit time (epoch ms).

        Raises psycopg.Error if the database fails; nothing of the batch is then committed.
        A batch whose trades were on their way to the DEFAULT partition when their month was
        made is written once more, into that month.
        """
        import psycopg

        from binprice.db.partitions import month_made_meanwhile

        try:
            return await self._write(batch)
        except psycopg.errors.CheckViolation as exc:
            if not month_made_meanwhile(exc):
                raise
        return await self._write(batch)

    async def _write(self, batch: Batch) -> tuple[dict[str, int], int]:
        import psycopg

        conn = self._conn
        try:
            async with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_TRADES) as copy:
                await copy.write(batch.payload)
            return batch.counts, time.time_ns() // 1_000_000
        except psycopg.errors.UniqueViolation:
            pass
        if not self._stage_ready:
            await conn.execute(CREATE_STAGE)
            self._stage_ready = True
        async with conn.transaction(), conn.cursor() as cur:
            async with cur.copy(COPY_STAGE) as copy:
                await copy.write(batch.payload)
            await cur.execute(INSERT_FROM_STAGE)
            inserted = Counter(str(row[0]) for row in await cur.fetchall())
        return dict(inserted), time.time_ns() // 1_000_000

    async def last_trades(self, symbols: tuple[str, ...]) -> dict[str, tuple[int, int]]:
        """Per symbol with stored trades, the highest stored id and its trade time (epoch
        ms): one backward primary-key probe per symbol."""
        async with self._conn.cursor() as cur:
            await cur.execute(
                "SELECT s, t.trade_id, (extract(epoch FROM t.timestamp) * 1000)::bigint "
                "FROM unnest(%s::text[]) AS s CROSS JOIN LATERAL (SELECT trade_id, timestamp "
                "FROM trades WHERE symbol = s ORDER BY trade_id DESC LIMIT 1) AS t",
                (list(symbols),),
            )
            rows = await cur.fetchall()
        return {str(s): (int(i), int(t)) for s, i, t in rows}  # type: ignore[call-overload]
