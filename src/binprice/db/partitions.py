"""The monthly partitions of `trades`: make sure they exist, list them, drop old ones.

`trades` is partitioned by UTC month of trade time (migration 0008): `trades_YYYY_MM` and a
DEFAULT partition, `trades_default`, that catches rows whose month has no partition yet.
Migration 0008's SQL function `binprice_ensure_trade_partitions(lo, hi)` does the creating:
the months overlapping `[lo, hi)`, and every month the DEFAULT partition holds rows of, whose
rows it moves into the new month in the same transaction. Writers call `ensure_ahead` (or
`ensure_partitions` for an archive's period) before they could need a new month, so the DEFAULT
partition stays empty; when it does not, nothing is lost and the next call empties it. Live
capture calls `ensure_ahead_async` when it starts and hourly (`binprice.ingest.ahead`);
`binprice import` calls `ensure_partitions` for each file's month before loading it.

`prune` drops whole months older than a cut, those of rows waiting in DEFAULT included (it
makes their months first, and `plan_prune` counts them there). Dropping a partition fires no
trigger, so the rollup minutes of the dropped range are deleted here (unless kept, so that
candles of pruned history stay answerable), and the cut is recorded in `prunes` (migration
0009): the completeness check (`gaps --verify`) starts there instead of reporting pruned
history as holes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from binprice.db.aggtrades import count_aggs_before, delete_aggs_before
from binprice.errors import DatabaseBusyError

__all__ = [
    "DEFAULT_PARTITION",
    "ENSURE_LOCK_TIMEOUT",
    "MONTHS_AHEAD",
    "PRUNE_LOCK_TIMEOUT",
    "Partition",
    "PruneResult",
    "default_months",
    "ensure_ahead",
    "ensure_ahead_async",
    "ensure_partitions",
    "list_partitions",
    "month_made_meanwhile",
    "month_start",
    "plan_prune",
    "prune",
    "pruned_before",
]

Connection = psycopg.Connection[Any]

#: Months created after the current one, so the first trade of a month finds its partition
#: even when the writer last made sure weeks ago.
MONTHS_AHEAD = 2
#: How long `prune` waits for the lock a DROP needs on `trades` (every reader and writer
#: holds a weaker one for a statement or a batch); it fails, dropping nothing, after that
#: rather than queue the writers behind it for longer.
PRUNE_LOCK_TIMEOUT = timedelta(seconds=5)
#: How long making a month waits for its brief lock on the DEFAULT partition (see
#: `ensure_partitions`): short, because queries queue behind it.
ENSURE_LOCK_TIMEOUT = timedelta(seconds=2)
MONTHS_PER_YEAR = 12

ENSURE_SQL = "SELECT binprice_ensure_trade_partitions(%s, %s)"
#: The partition that catches rows whose month has none yet (migration 0008).
DEFAULT_PARTITION = "trades_default"

#: Every partition of trades with its bounds (NULL for DEFAULT), the planner's row estimate
#: and its size with indexes. Bounds are read back from the catalog's text, which carries the
#: UTC offset, so the cast is right whatever the session's time zone.
LIST_SQL = r"""
SELECT c.relname, b[1]::timestamptz, b[2]::timestamptz,
       greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
LEFT JOIN LATERAL regexp_match(
    pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$
) AS b ON true
WHERE i.inhparent = 'trades'::regclass
ORDER BY 2 NULLS LAST, 1
"""

#: The (market, symbol) series of the rollup, one probe of its primary key per series (a loose
#: index scan).
ROLLUP_SYMBOLS_CTE = """
rolled(market, symbol) AS (
    (SELECT market, symbol FROM trade_minutes ORDER BY market, symbol LIMIT 1)
    UNION ALL
    SELECT n.market, n.symbol FROM rolled AS r
    CROSS JOIN LATERAL (
        SELECT m.market, m.symbol FROM trade_minutes AS m
        WHERE (m.market, m.symbol) > (r.market, r.symbol)
        ORDER BY m.market, m.symbol LIMIT 1
    ) AS n
)"""
#: Exact trades of a time range, from the rollup (per symbol: a range of its primary key).
_ROLLUP_TRADES_SQL = f"""
WITH RECURSIVE {ROLLUP_SYMBOLS_CTE}
SELECT coalesce(sum(m.trades), 0)::bigint FROM rolled AS r
JOIN trade_minutes AS m ON m.market = r.market AND m.symbol = r.symbol AND m.minute >= %(lo)s
  AND m.minute < %(hi)s
"""
_DELETE_ROLLUP_SQL = f"""
WITH RECURSIVE {ROLLUP_SYMBOLS_CTE}
DELETE FROM trade_minutes AS m USING rolled AS r
WHERE m.market = r.market AND m.symbol = r.symbol AND m.minute >= %(lo)s AND m.minute < %(hi)s
"""
_RECORD_SQL = """
INSERT INTO prunes (pruned_before, partitions, trades, bytes, rollup_kept)
VALUES (%(before)s, %(partitions)s, %(trades)s, %(bytes)s, %(kept)s)
ON CONFLICT (pruned_before) DO UPDATE SET
    partitions = prunes.partitions + EXCLUDED.partitions, trades = prunes.trades + EXCLUDED.trades,
    bytes = prunes.bytes + EXCLUDED.bytes, rollup_kept = EXCLUDED.rollup_kept, pruned_at = now()
"""
PRUNED_BEFORE_SQL = "SELECT max(pruned_before) FROM prunes"
#: The months of the rows waiting in DEFAULT before a month start, with their exact count and
#: size (without indexes: they have none of their own yet). DEFAULT is kept nearly empty, and
#: its time index bounds the scan.
_DEFAULT_MONTHS_SQL = """
SELECT date_trunc('month', "timestamp", 'UTC'), count(*), sum(pg_column_size(d.*))::bigint
FROM trades_default AS d WHERE "timestamp" < %(before)s GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of `trades`; `start`/`end` are None for the DEFAULT partition."""

    name: str
    start: datetime | None
    end: datetime | None
    #: The planner's estimate (as of the last VACUUM or ANALYZE), not a count.
    rows_estimate: int
    #: Table, indexes and TOAST.
    bytes: int

    @property
    def is_default(self) -> bool:
        return self.start is None


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What `prune` dropped (or `plan_prune` would drop) for a cut at `older_than`."""

    older_than: datetime
    partitions: tuple[Partition, ...]
    #: Exact, from the per-minute rollup of the dropped months.
    trades: int
    bytes: int
    rollup_kept: bool
    #: False for a plan: nothing was changed.
    done: bool
    #: Of `trades`, those that were waiting in the DEFAULT partition (their months are made,
    #: then dropped with the others).
    from_default: int = 0
    #: Aggregate trades (every market) before the same whole-month cut, deleted with them.
    agg_trades: int = 0

    @property
    def agg_cut(self) -> datetime:
        """Aggregate trades before this moment go (the trades' whole-month rule)."""
        return month_start(self.older_than)

    @property
    def pruned_before(self) -> datetime | None:
        """Everything stored before this moment is gone (the end of the newest month dropped)."""
        ends = [p.end for p in self.partitions if p.end is not None]
        return max(ends) if ends else None


def month_start(moment: datetime) -> datetime:
    """The first instant of `moment`'s UTC month."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """The start of the UTC month `count` months after the month starting at `month`."""
    index = month.year * MONTHS_PER_YEAR + month.month - 1 + count
    return datetime(index // MONTHS_PER_YEAR, index % MONTHS_PER_YEAR + 1, 1, tzinfo=UTC)


def ensure_partitions(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    lock_timeout: timedelta = ENSURE_LOCK_TIMEOUT,
) -> list[str]:
    """Make sure every UTC month overlapping `[start, end)` has its partition, and that the
    DEFAULT partition's rows are moved to theirs; return the partitions created.

    Takes an advisory lock (concurrent callers wait and then find the months made). Making a
    month takes SHARE UPDATE EXCLUSIVE on `trades`, which writers and readers do not mind, and
    ACCESS EXCLUSIVE on the DEFAULT partition for the moment it takes to check it holds none
    of the month's rows; every query on `trades` holds a weaker lock on DEFAULT, so this waits
    for running queries, and new ones wait behind it. Rather than hold them up behind a long
    export, it gives up after `lock_timeout` with DatabaseBusyError, having made nothing: call
    it again later (the months are made ahead, so there is time). Call it in a transaction of
    its own, not in one that has written trades.
    """
    try:
        with conn.transaction():
            _lock_timeout(conn, lock_timeout)
            rows = conn.execute(ENSURE_SQL, (start, end)).fetchall()
    except psycopg.errors.LockNotAvailable:
        raise _busy(lock_timeout, "no partition was made") from None
    return [str(row[0]) for row in rows]


def ensure_ahead(
    conn: Connection,
    now: datetime | None = None,
    *,
    lock_timeout: timedelta = ENSURE_LOCK_TIMEOUT,
) -> list[str]:
    """`ensure_partitions` for the current UTC month and the `MONTHS_AHEAD` after it: what a
    writer calls when it starts and then at least once a month (hourly is cheap)."""
    start, end = _ahead(now)
    return ensure_partitions(conn, start, end, lock_timeout=lock_timeout)


async def ensure_ahead_async(
    conn: psycopg.AsyncConnection[Any],
    now: datetime | None = None,
    *,
    lock_timeout: timedelta = ENSURE_LOCK_TIMEOUT,
) -> list[str]:
    """`ensure_ahead` on an async connection, for live capture: the same months, locks and
    timeout, and cancelling it (a stopping ingest) rolls back with nothing made, where a
    thread blocked on a hung server could not be cancelled at all."""
    start, end = _ahead(now)
    try:
        async with conn.transaction():
            await conn.execute(_lock_timeout_sql(lock_timeout))
            rows = await (await conn.execute(ENSURE_SQL, (start, end))).fetchall()
    except psycopg.errors.LockNotAvailable:
        raise _busy(lock_timeout, "no partition was made") from None
    return [str(row[0]) for row in rows]


def _ahead(now: datetime | None) -> tuple[datetime, datetime]:
    """The current UTC month's start and the end of the `MONTHS_AHEAD`-th month after it."""
    current = month_start(now or datetime.now(UTC))
    return current, add_months(current, MONTHS_AHEAD + 1)


def _lock_timeout_sql(wait: timedelta) -> str:
    """For the rest of the transaction, give up on a lock not granted within `wait`."""
    return f"SET LOCAL lock_timeout = {int(wait // timedelta(milliseconds=1))}"


def _lock_timeout(conn: Connection, wait: timedelta) -> None:
    conn.execute(_lock_timeout_sql(wait))


def _busy(wait: timedelta, outcome: str) -> DatabaseBusyError:
    return DatabaseBusyError(
        f"trades stayed locked by other sessions for {wait.total_seconds():g} s; {outcome}; "
        "try again (a long export or query may hold it)"
    )


def month_made_meanwhile(exc: BaseException) -> bool:
    """Whether a write into trades failed only because a month was made while it ran, so that
    the same write again succeeds. PostgreSQL routes a statement's rows by the partitions
    there were when it started; a row it sends to DEFAULT after the month is attached then
    fails DEFAULT's new partition constraint (a check violation on `trades_default`)."""
    return (
        isinstance(exc, psycopg.errors.CheckViolation) and exc.diag.table_name == DEFAULT_PARTITION
    )


def list_partitions(conn: Connection) -> list[Partition]:
    """Every partition of `trades`, oldest month first, the DEFAULT partition last."""
    return [
        Partition(str(name), start, end, int(rows), int(size))
        for name, start, end, rows, size in conn.execute(LIST_SQL).fetchall()
    ]


def pruned_before(conn: Connection) -> datetime | None:
    """The moment before which `prune` dropped the stored history, if it ever did."""
    row = conn.execute(PRUNED_BEFORE_SQL).fetchone()
    return None if row is None or row[0] is None else row[0].astimezone(UTC)


def plan_prune(conn: Connection, older_than: datetime) -> PruneResult:
    """What `prune(conn, older_than)` would drop now; changes nothing. The months of rows
    waiting in DEFAULT are listed as the partitions `prune` makes for them (counted exactly,
    sized without indexes)."""
    waiting = default_months(conn, older_than)
    doomed = sorted(
        (*_doomed(list_partitions(conn), older_than), *waiting),
        key=lambda p: p.start or older_than,
    )
    counted = {p.name: p.rows_estimate for p in waiting}
    result = _result(conn, older_than, tuple(doomed), counted, keep_rollup=False, done=False)
    return replace(result, agg_trades=count_aggs_before(conn, month_start(older_than)))


def default_months(conn: Connection, older_than: datetime) -> list[Partition]:
    """The months the DEFAULT partition holds rows of that end at or before `older_than`, as
    the partitions to be made for them."""
    rows = conn.execute(_DEFAULT_MONTHS_SQL, {"before": month_start(older_than)}).fetchall()
    months = [(month.astimezone(UTC), int(count), int(size)) for month, count, size in rows]
    return [
        Partition(month.strftime("trades_%Y_%m"), month, add_months(month, 1), count, size)
        for month, count, size in months
    ]


def prune(
    conn: Connection,
    older_than: datetime,
    *,
    keep_rollup: bool = False,
    lock_timeout: timedelta = PRUNE_LOCK_TIMEOUT,
) -> PruneResult:
    """Drop every monthly partition that ends at or before `older_than`, in one transaction.

    First moves what the DEFAULT partition holds into monthly partitions (old rows in it go
    with their month, and are counted exactly, whether or not the rollup knows them). Without
    `keep_rollup` the rollup minutes of the dropped months are deleted too. The cut is recorded
    in `prunes`. Raises DatabaseBusyError, having changed nothing, if `trades` stays locked
    for `lock_timeout`.
    """
    try:
        with conn.transaction():
            _lock_timeout(conn, lock_timeout)
            # Empties DEFAULT and holds the partition lock until commit: no month appears or
            # moves while we decide what to drop.
            made = {str(row[0]) for row in conn.execute(ENSURE_SQL, (older_than, older_than))}
            doomed = _doomed(list_partitions(conn), older_than)
            counted = {p.name: _count(conn, p.name) for p in doomed if p.name in made}
            result = _result(conn, older_than, doomed, counted, keep_rollup=keep_rollup, done=True)
            aggs = delete_aggs_before(conn, month_start(older_than))
            result = replace(result, agg_trades=aggs)
            for partition in doomed:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition.name)))
                _drop_blocks(conn, partition)
                if not keep_rollup:
                    conn.execute(_DELETE_ROLLUP_SQL, {"lo": partition.start, "hi": partition.end})
            if doomed:
                conn.execute(
                    _RECORD_SQL,
                    {
                        "before": result.pruned_before,
                        "partitions": len(doomed),
                        "trades": result.trades,
                        "bytes": result.bytes,
                        "kept": keep_rollup,
                    },
                )
    except psycopg.errors.LockNotAvailable:
        raise _busy(lock_timeout, "nothing was dropped") from None
    return result


#: A compressed month's blocks (migration 0010), dropped with its row partition.
_BLOCKS_BYTES_SQL = "SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)"
_UNCOMPRESS_SQL = "DELETE FROM compressed_months WHERE month >= %s AND month < %s"


def _blocks_name(partition: Partition) -> str:
    return "trade_blocks_" + partition.name.removeprefix("trades_")


def _drop_blocks(conn: Connection, partition: Partition) -> None:
    """Drop the month's partition of trade_blocks, if it was compressed, and its catalog row."""
    name = _blocks_name(partition)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    conn.execute(_UNCOMPRESS_SQL, (partition.start, partition.end))


def _doomed(partitions: Sequence[Partition], older_than: datetime) -> tuple[Partition, ...]:
    return tuple(p for p in partitions if p.end is not None and p.end <= older_than)


def _blocks_bytes(conn: Connection, partition: Partition) -> int:
    row = conn.execute(_BLOCKS_BYTES_SQL, (_blocks_name(partition),)).fetchone()
    return int(row[0]) if row else 0


def _count(conn: Connection, table: str) -> int:
    """The rows of a partition just made from DEFAULT's: a table of a few rows, usually."""
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return int(row.fetchone()[0])  # type: ignore[index]


def _result(
    conn: Connection,
    older_than: datetime,
    doomed: tuple[Partition, ...],
    counted: Mapping[str, int],
    *,
    keep_rollup: bool,
    done: bool,
) -> PruneResult:
    """The result of dropping `doomed`: trades from the rollup, except the partitions whose
    rows `counted` gives (those from DEFAULT, which a writer may have put there directly,
    bypassing the rollup's statement triggers on `trades`)."""
    trades = 0
    for partition in doomed:
        if partition.name in counted:
            trades += counted[partition.name]
            continue
        row = conn.execute(_ROLLUP_TRADES_SQL, {"lo": partition.start, "hi": partition.end})
        trades += int(row.fetchone()[0])  # type: ignore[index]
    return PruneResult(
        older_than=older_than,
        partitions=doomed,
        trades=trades,
        bytes=sum(p.bytes + _blocks_bytes(conn, p) for p in doomed),
        rollup_kept=keep_rollup,
        done=done,
        from_default=sum(counted.values()),
    )
