"""Partition `trades` by month of trade time (declarative RANGE partitioning on `timestamp`).

A table that grows by millions of trades a day can then be bounded by dropping whole months
(`binprice db prune`), which costs a catalog change instead of a DELETE of every row and the
VACUUM after it; each month's indexes stay the size of a month.

**Uniqueness.** PostgreSQL enforces a unique constraint on a partitioned table per partition, so
it must contain the partition key: `(symbol, trade_id)` alone cannot be the primary key any
more. It becomes `(symbol, trade_id, timestamp)`. A trade's time never changes (Binance's `T` is
the matching engine's time, the same in the stream, in REST and in the archives, all kept at
millisecond precision), so a re-delivered trade has the same key, is routed to the same
partition and collides there exactly as before: COPY fails on the primary key and the writers'
staging path (`INSERT … ON CONFLICT (symbol, trade_id, timestamp) DO NOTHING`) skips it. What
the key no longer refuses is the same id at another time; binprice never writes that (every
source reports the same `T`), and the readers drop ids they have already handed over.

**Partitions.** One per UTC month, named `trades_YYYY_MM`, plus `trades_default`, a DEFAULT
partition as a safety net: a row whose month has no partition yet (a writer that did not make
sure, an old archive imported) lands there instead of failing the batch. The function
`binprice_ensure_trade_partitions(lo, hi)` creates the months overlapping `[lo, hi)` and every
month the DEFAULT partition holds rows of, moving those rows into their month in the same
transaction (rows are never lost and never stay in DEFAULT once their month exists), and
returns the names it created. It serialises on an advisory lock. A new month is created as a
plain table, filled with the DEFAULT partition's rows of that month (usually none) and
ATTACHed, which takes SHARE UPDATE EXCLUSIVE on `trades` (writers and readers go on) and, to
check that DEFAULT holds no more rows of the month, ACCESS EXCLUSIVE on the DEFAULT partition
for that moment (readers of `trades` lock DEFAULT too, so they wait that long; the Python
caller sets a lock timeout). Moving rows between partitions directly fires no statement
trigger of `trades`, so the rollup (which already counts them) stays exact.

The indexes and the rollup triggers are declared on `trades` and so hold for every partition:
the primary key and `ix_trades_symbol_timestamp` exist per partition (a query on one symbol
probes each partition that its time bounds do not exclude), and the statement-level triggers'
transition tables hold the rows of all partitions a statement wrote.

**Planner statistics.** Every per-symbol query gives the symbol as a parameter (`unnest` of
the requested symbols, then a LATERAL probe), so the planner estimates `symbol = $1` at one
over the partition's number of distinct symbols. A month of a database that captures two busy
symbols and a rare one has two distinct symbols (the rare one may not trade that month), so the
planner takes any symbol for half the rows and finds the last trade before a time (`at`,
`watch`) by walking the `(timestamp DESC, symbol)` index backwards, which for the rare symbol
reads the whole month; an unpartitioned table's statistics include the rare symbol and never
led there. Declaring the column's `n_distinct` as the number of symbols Binance lists on every
partition makes a parameter symbol rare to the planner, so per-symbol probes take the
per-symbol indexes, which are one descent for busy symbols too. Literal symbols keep their
most-common-value statistics; nothing else binprice runs depends on the estimate.

The existing rows are copied into the new table (bulk insert first, indexes built after); on
an existing table this takes about as long as building its indexes again, and as much disk
again for the time of the migration.

Nothing here is specific to one machine: no extension, no tablespace, no unlogged table;
see README "Beyond one machine" for what Citus and TimescaleDB would need instead.

Revision ID: 0008_trades_partitioned
Revises: 0007_imports
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_trades_partitioned"
down_revision: str | None = "0007_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: pg_advisory_xact_lock key of partition management ("binppart" in ASCII).
PARTITION_LOCK_KEY = 0x62696E7070617274
#: Months created ahead of the current one, so the first trade of a month finds its partition.
MONTHS_AHEAD = 2
#: The planner's number of distinct symbols in each partition: about what Binance Spot lists
#: (~1,400 trading). See "Planner statistics" above.
SYMBOLS_ESTIMATE = 1400

_COLUMNS = 'symbol, trade_id, price, quantity, "timestamp", is_buyer_maker'
#: The primary key: a unique constraint of a partitioned table must hold the partition key.
_KEY = 'symbol, trade_id, "timestamp"'

# Defined SET TimeZone = 'UTC' so that months start at UTC midnight and a month is added in UTC
# whatever the caller's session time zone is.
ENSURE_FUNCTION = f"""
CREATE FUNCTION binprice_ensure_trade_partitions(lo timestamptz, hi timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    month timestamptz;
    next_month timestamptz;
    part text;
BEGIN
    PERFORM pg_advisory_xact_lock({PARTITION_LOCK_KEY});
    FOR month IN
        SELECT m FROM generate_series(date_trunc('month', lo), hi, interval '1 month') AS m
        WHERE m < hi
        UNION
        SELECT DISTINCT date_trunc('month', "timestamp") FROM trades_default
        ORDER BY 1
    LOOP
        part := 'trades_' || to_char(month, 'YYYY_MM');
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;
        next_month := month + interval '1 month';
        EXECUTE format(
            'CREATE TABLE %I (LIKE trades INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format(
            'ALTER TABLE %I ALTER COLUMN symbol SET (n_distinct = {SYMBOLS_ESTIMATE})', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM trades_default WHERE "timestamp" >= %L '
            'AND "timestamp" < %L RETURNING {_COLUMNS}) '
            'INSERT INTO %I ({_COLUMNS}) SELECT {_COLUMNS} FROM moved',
            month, next_month, part);
        EXECUTE format(
            'ALTER TABLE trades ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            part, month, next_month);
        RETURN NEXT part;
    END LOOP;
END
$$;
"""

# The rollup triggers of 0004 (their functions stay as 0005 left them), on the new table.
TRIGGERS = """
CREATE TRIGGER trades_minutes_insert AFTER INSERT ON trades
    REFERENCING NEW TABLE AS new_trades
    FOR EACH STATEMENT EXECUTE FUNCTION binprice_trade_minutes_add();
CREATE TRIGGER trades_minutes_update AFTER UPDATE ON trades
    REFERENCING OLD TABLE AS old_trades NEW TABLE AS new_trades
    FOR EACH STATEMENT EXECUTE FUNCTION binprice_trade_minutes_recompute();
CREATE TRIGGER trades_minutes_delete AFTER DELETE ON trades
    REFERENCING OLD TABLE AS old_trades
    FOR EACH STATEMENT EXECUTE FUNCTION binprice_trade_minutes_recompute();
CREATE TRIGGER trades_minutes_truncate AFTER TRUNCATE ON trades
    FOR EACH STATEMENT EXECUTE FUNCTION binprice_trade_minutes_clear();
"""
_DROP_TRIGGERS = "".join(
    f"DROP TRIGGER trades_minutes_{name} ON trades;\n"
    for name in ("insert", "update", "delete", "truncate")
)
_INDEXES = """
CREATE INDEX ix_trades_timestamp_symbol ON trades ("timestamp" DESC, symbol);
CREATE INDEX ix_trades_symbol_timestamp ON trades (symbol, "timestamp", trade_id)
    INCLUDE (price, quantity);
"""
_DROP_INDEXES = """
DROP INDEX ix_trades_timestamp_symbol;
DROP INDEX ix_trades_symbol_timestamp;
ALTER TABLE {table} DROP CONSTRAINT pk_trades;
"""
_COLUMN_DEFINITIONS = """
    symbol text NOT NULL,
    trade_id bigint NOT NULL,
    price numeric NOT NULL,
    quantity numeric NOT NULL,
    "timestamp" timestamp(3) with time zone NOT NULL,
    is_buyer_maker boolean NOT NULL,
    CONSTRAINT ck_trades_symbol_upper CHECK (symbol = upper(symbol))
"""
_SYMBOL_STATISTICS = (
    f"ALTER TABLE {{table}} ALTER COLUMN symbol SET ({{option}} = {SYMBOLS_ESTIMATE})"
)
# The months the old table holds trades in, one probe of its time index per month (a loose
# index scan), with the month added in UTC whatever the session's time zone.
_MONTHS_WITH_TRADES = """
WITH RECURSIVE months(m) AS (
    SELECT date_trunc('month', min("timestamp"), 'UTC') FROM trades_unpartitioned
    UNION ALL
    SELECT (SELECT date_trunc('month', min(t."timestamp"), 'UTC') FROM trades_unpartitioned AS t
            WHERE t."timestamp" >= ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC')
    FROM months WHERE m IS NOT NULL
)
SELECT binprice_ensure_trade_partitions(m, m + interval '1 millisecond')
FROM months WHERE m IS NOT NULL
"""


def upgrade() -> None:
    op.execute(_DROP_TRIGGERS)
    op.execute("ALTER TABLE trades RENAME TO trades_unpartitioned")
    op.execute("ALTER INDEX ix_trades_timestamp_symbol RENAME TO ix_trades_unpartitioned_timestamp")
    op.execute("ALTER INDEX ix_trades_symbol_timestamp RENAME TO ix_trades_unpartitioned_symbol")
    op.execute("ALTER TABLE trades_unpartitioned RENAME CONSTRAINT pk_trades TO pk_unpartitioned")
    op.execute(f'CREATE TABLE trades ({_COLUMN_DEFINITIONS}) PARTITION BY RANGE ("timestamp")')
    op.execute(_SYMBOL_STATISTICS.format(table="trades", option="n_distinct_inherited"))
    op.execute("CREATE TABLE trades_default PARTITION OF trades DEFAULT")
    op.execute(_SYMBOL_STATISTICS.format(table="trades_default", option="n_distinct"))
    op.execute(ENSURE_FUNCTION)
    op.execute(_MONTHS_WITH_TRADES)
    op.execute(
        f"SELECT binprice_ensure_trade_partitions(now(), now() + interval '{MONTHS_AHEAD} months')"
    )
    # Rows first, indexes after: one sorted build per index instead of a billion inserts into it.
    op.execute(f"INSERT INTO trades ({_COLUMNS}) SELECT {_COLUMNS} FROM trades_unpartitioned")
    op.execute(f"ALTER TABLE trades ADD CONSTRAINT pk_trades PRIMARY KEY ({_KEY})")
    op.execute(_INDEXES)
    op.execute(TRIGGERS)
    op.execute("DROP TABLE trades_unpartitioned")


def downgrade() -> None:
    op.execute(_DROP_TRIGGERS)
    op.execute("DROP FUNCTION binprice_ensure_trade_partitions(timestamptz, timestamptz)")
    op.execute(_DROP_INDEXES.format(table="trades"))
    op.execute("ALTER TABLE trades RENAME TO trades_partitioned")
    op.execute(f"CREATE TABLE trades ({_COLUMN_DEFINITIONS})")
    op.execute(f"INSERT INTO trades ({_COLUMNS}) SELECT {_COLUMNS} FROM trades_partitioned")
    # Fails on the same id stored at two times, which only the partitioned key admits: such a
    # database cannot go back to the (symbol, trade_id) key without choosing one of the rows.
    op.execute("ALTER TABLE trades ADD CONSTRAINT pk_trades PRIMARY KEY (symbol, trade_id)")
    op.execute(_INDEXES)
    op.execute(TRIGGERS)
    op.execute("DROP TABLE trades_partitioned")
