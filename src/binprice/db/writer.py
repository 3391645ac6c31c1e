"""The batch writer: trades → PostgreSQL with COPY, exactly once, a commit as the only ack.

Fast path: `COPY trades FROM STDIN` straight into the table, one transaction per batch. The
reader already drops trades it has seen, so a batch almost never holds a stored trade; when one
does (another ingestor, a restart race, a backfill overlap) the primary key rejects the COPY and
the batch is written again through a temporary staging table with `INSERT … ON CONFLICT DO
NOTHING`. Either way a re-delivered trade never creates a second row.

A batch that carries its own rollup (ingest's, `Batch.minutes`) skips the parent table: its
rows are COPYed into their month's partition, one COPY per month the batch touches, and its
minutes upserted into `trade_minutes` in the same transaction (`binprice.db.liverollup`); a
statement on a partition fires no trigger of `trades`, so nothing is counted twice. Rows of a
month without a partition (they go to DEFAULT), and the staging fallback, go through `trades`
and its rollup trigger as before.

A COMMIT whose answer never came (the connection or the server died in between) may have
committed or not. The writer notes the transaction's id before it sends COMMIT; before the
batch is written again, `settle` asks the server what became of that transaction and, if it
committed, counts the rows it inserted, so a run's `stored` is what the table gained from it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from binprice.db.copy import (
    CREATE_STAGE,
    CURRENT_XID,
    INSERT_FROM_STAGE,
    ROWS_OF_XID,
    XID_STATUS,
    Batch,
    copy_partition,
    copy_stage,
    copy_trades,
)
from binprice.db.liverollup import (
    ATTACHED_MONTHS,
    MINUTE_MS,
    UPSERT_MINUTES,
    MinuteRow,
    minute_columns,
)
from binprice.errors import DatabaseError
from binprice.markets import DEFAULT_MARKET, Market

if TYPE_CHECKING:
    import psycopg

#: xmin holds a transaction id without its epoch: the low 32 bits of txid_current().
XID_MODULUS = 2**32


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A write whose COMMIT was sent: its transaction id and the rows per symbol it inserted."""

    xid: int
    inserted: dict[str, int]


#: Per symbol, its highest stored id and that trade's time: the last row by the primary key,
#: or the last block's (a quiet symbol's rows of the live month are all blocks a day or two
#: after its last trade, `binprice.db.compress_days`), whichever id is higher.
LAST_TRADES_SQL = """
SELECT s, t.trade_id, (extract(epoch FROM t.ts) * 1000)::bigint
FROM unnest(%(symbols)s::text[]) AS s CROSS JOIN LATERAL (
    SELECT * FROM (
        (SELECT trade_id, timestamp AS ts FROM trades
         WHERE market = %(market)s AND symbol = s ORDER BY trade_id DESC LIMIT 1)
        UNION ALL
        (SELECT last_id, last_ts FROM trade_blocks
         WHERE market = %(market)s AND symbol = s ORDER BY first_ts DESC, first_id DESC LIMIT 1)
    ) AS found ORDER BY trade_id DESC LIMIT 1
) AS t"""


def _month_of(ms: int) -> str:
    """'YYYY_MM' of an epoch-ms time (UTC), as in the partitions' names."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y_%m")


class TradeWriter:
    """Owns one psycopg async connection and writes batches of one market through it (the
    batches' COPY rows are that market's, see `CopyEncoder`)."""

    #: The staging table's statements (`AggTradeWriter` names those of `agg_trades`).
    create_stage_sql = CREATE_STAGE
    insert_from_stage_sql = INSERT_FROM_STAGE

    def __init__(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], market: Market = DEFAULT_MARKET
    ) -> None:
        self._conn = conn
        self.market = market
        self._copy = copy_trades(market)
        self._copy_stage = copy_stage(market)
        self._stage_ready = False
        #: The month partitions of `trades` last seen attached (read when a batch needs one
        #: that is not in here, cleared when one has gone).
        self._months: set[str] = set()
        #: The transaction whose COMMIT was sent and not yet answered (kept if it never is),
        #: and the rows per symbol it inserted.
        self.unanswered: Unanswered | None = None

    @classmethod
    async def connect(cls, url: str, market: Market = DEFAULT_MARKET) -> TradeWriter:
        from binprice.db import connect_async

        return cls(await connect_async(url), market)

    async def close(self) -> None:
        await self._conn.close()

    @property
    def closed(self) -> bool:
        return self._conn.closed

    async def write(self, batch: Batch) -> tuple[dict[str, int], int]:
        """Store `batch`; return new rows per symbol and the commit time (epoch ms).

        Raises psycopg.Error if the database fails; nothing of the batch is then committed,
        unless `unanswered` is left set: that COMMIT was sent, and `settle` tells.
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
        except psycopg.errors.UndefinedTable:
            # A month partition this writer had seen was dropped (prune) meanwhile.
            self._months.clear()
        return await self._write(batch)

    async def _write(self, batch: Batch) -> tuple[dict[str, int], int]:
        import psycopg

        conn = self._conn
        parts = await self._parts(batch)
        try:
            async with conn.transaction(), conn.cursor() as cur:
                xid = await self._xid(cur)
                rolled: list[MinuteRow] = []
                for partition, payload, minutes in parts:
                    async with cur.copy(self._copy_into(partition)) as copy:
                        await copy.write(payload)
                    rolled += minutes
                if rolled:
                    await cur.execute(UPSERT_MINUTES, [self.market.number, *minute_columns(rolled)])
                self.unanswered = Unanswered(xid, batch.counts)
            self.unanswered = None
            return batch.counts, time.time_ns() // 1_000_000
        except psycopg.errors.UniqueViolation:
            pass
        if not self._stage_ready:
            await conn.execute(self.create_stage_sql)
            self._stage_ready = True
        async with conn.transaction(), conn.cursor() as cur:
            xid = await self._xid(cur)
            async with cur.copy(self._copy_stage) as copy:
                await copy.write(batch.payload)
            await cur.execute(self.insert_from_stage_sql)
            inserted = dict(Counter(str(row[0]) for row in await cur.fetchall()))
            self.unanswered = Unanswered(xid, inserted)
        self.unanswered = None
        return inserted, time.time_ns() // 1_000_000

    def _copy_into(self, partition: str | None) -> str:
        return self._copy if partition is None else copy_partition(partition, self.market)

    async def _parts(self, batch: Batch) -> list[tuple[str | None, bytes, list[MinuteRow]]]:
        """What to COPY where: (month partition, its rows, their minutes) for the months of
        `batch` that have a partition, (None, rows, []) for the rest (through `trades` and its
        trigger). Without a rollup of its own, the whole batch goes through `trades`."""
        minutes = batch.minutes
        if minutes is None or not batch.times:
            return [(None, batch.payload, [])]
        first, last = _month_of(min(batch.times)), _month_of(max(batch.times))
        if first == last:
            name = await self._partition(first)
            return [(name, batch.payload, minutes if name else [])]
        lines: dict[str, list[bytes]] = {}
        for line in batch.payload.splitlines(keepends=True):
            stamp = line.rsplit(b"\t", 2)[1]  # 'YYYY-MM-DD HH:MM:SS.mmm+00'
            lines.setdefault(f"{stamp[:4].decode()}_{stamp[5:7].decode()}", []).append(line)
        by_month: dict[str, list[MinuteRow]] = {}
        for row in minutes:
            by_month.setdefault(_month_of(row[1] * MINUTE_MS), []).append(row)
        parts: list[tuple[str | None, bytes, list[MinuteRow]]] = []
        for month, rows in sorted(lines.items()):  # months in one order for every writer
            name = await self._partition(month)
            parts.append((name, b"".join(rows), by_month.get(month, []) if name else []))
        return parts

    async def _partition(self, month: str) -> str | None:
        """`trades_<month>` if that partition is attached, else None."""
        name = f"trades_{month}"
        if name not in self._months:
            async with self._conn.cursor() as cur:
                await cur.execute(ATTACHED_MONTHS)
                self._months = {str(row[0]) for row in await cur.fetchall()}
        return name if name in self._months else None

    @staticmethod
    async def _xid(cur: psycopg.AsyncCursor[tuple[object, ...]]) -> int:
        await cur.execute(CURRENT_XID)
        row = await cur.fetchone()
        xid = None if row is None else row[0]
        assert isinstance(xid, int)
        return xid

    async def settle(self, sent: Unanswered, batch: Batch) -> dict[str, int] | None:
        """What became of `sent`, an earlier write of `batch` whose COMMIT went unanswered:
        the rows of `batch` it inserted per symbol if it committed, else None.

        Raises DatabaseError (retried like an outage) while it is still in progress on a
        connection the server has not yet noticed is gone.
        """
        import psycopg

        async with self._conn.cursor() as cur:
            try:
                await cur.execute(XID_STATUS, (sent.xid,))
            except psycopg.errors.InvalidParameterValue:
                return None  # "in the future": the server restarted and never made it durable
            row = await cur.fetchone()
            status = None if row is None else row[0]
            if status == "in progress":
                raise DatabaseError(
                    f"an earlier write of this batch (transaction {sent.xid}) is still in progress"
                )
            if status != "committed":
                return None
            # The rows that transaction inserted carry its id (32 bits of it) as xmin. After a
            # crash that lost this commit the server may hand the id out again; that other
            # transaction is taken for this one only if it inserted exactly these rows.
            found = await self._rows_of(cur, batch, sent.xid % XID_MODULUS)
        wanted = {s: n for s, n in sent.inserted.items() if n}
        return wanted if found == wanted else None

    async def _rows_of(
        self, cur: psycopg.AsyncCursor[tuple[object, ...]], batch: Batch, xmin: int
    ) -> dict[str, int]:
        """Per symbol, how many rows of `batch` the transaction `xmin` inserted."""
        trades = batch.decoded()
        keys = ([t.symbol for t in trades], [t.trade_id for t in trades])
        await cur.execute(ROWS_OF_XID, (*keys, self.market.number, xmin))
        return {str(s): int(n) for s, n in await cur.fetchall()}  # type: ignore[call-overload]

    async def last_trades(self, symbols: tuple[str, ...]) -> dict[str, tuple[int, int]]:
        """Per symbol with stored trades of this writer's market, the highest stored id and its
        trade time (epoch ms), in rows or blocks: one backward probe of each primary key per
        symbol."""
        async with self._conn.cursor() as cur:
            params = {"symbols": list(symbols), "market": self.market.number}
            await cur.execute(LAST_TRADES_SQL, params)
            rows = await cur.fetchall()
        return {str(s): (int(i), int(t)) for s, i, t in rows}  # type: ignore[call-overload]
