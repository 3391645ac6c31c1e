"""The market dimension: every table that keys by symbol keys by (market, symbol) (#19).

BTCUSDT on Spot and the BTCUSDT USD-M perpetual are different series with their own trade ids,
so `trades`, the rollup `trade_minutes`, `gaps`, `checkpoints` and `imports` gain a `market`
smallint in the same encoding as `trade_blocks` and `compressed_months` (0010): 0 spot, 1 USD-M
futures, 2 COIN-M futures (`binprice.markets.Market.number`, the one mapping). Every existing
row is spot: the column is added with `DEFAULT 0`, which PostgreSQL records in the catalog
without rewriting a table (a row written before reads the default). The default stays, so a
writer that names no market writes spot, as every writer did before.

**Where the column sits.** At the end of `trades`, after `is_buyer_maker`: the boolean follows
the 8-byte-aligned timestamp, so it ends one byte past an 8-byte boundary and the smallint
fits in the padding the row is rounded up to anyway. A trade's heap tuple does not grow
(measured with `benchmarks/storage.py --only lean`, see docs/storage-design.md "Markets").
In the primary key the smallint costs an index entry up to 8 bytes where the symbol's text
ended on an 8-byte boundary (BTCUSDT: 7 letters and a one-byte header).

**Keys.** `trades` (market, symbol, trade_id, timestamp), `trade_minutes` (market, symbol,
minute), `gaps` (market, symbol, first_id, last_id) and its open-gap index, `checkpoints`
(market, symbol), `imports` (market, name): Binance's archive names a USD-M file exactly as the
Spot file of the same symbol and period. Market first, as in `trade_blocks`, so a market's
symbols are one range of each key. The seed index `(timestamp DESC, symbol)` stays as it is:
the per-symbol probes go through the primary key with the market given.

**The rollup triggers** group by market too; the insert trigger keeps 0011's one pass.
`binprice_ensure_trade_partitions` moves the market with a row out of the DEFAULT partition.
`trades_all` gains the market as its last column.

Rebuilding the primary key of `trades` reads every partition once (as long as building an
index of that size takes); the other tables are small.

**Downgrade** refuses while the database holds any row of another market than spot: 0011's
keys cannot tell BTCUSDT Spot from BTCUSDT USD-M, and dropping those rows is for a user to
decide (`DELETE FROM trades WHERE market <> 0`, and the same in the other tables).

Revision ID: 0012_market
Revises: 0011_lean_live_month
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_market"
down_revision: str | None = "0011_lean_live_month"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: pg_advisory_xact_lock key of partition management ("binppart" in ASCII), as in 0008.
PARTITION_LOCK_KEY = 0x62696E7070617274
#: As in 0008: the planner's number of distinct symbols in each partition.
SYMBOLS_ESTIMATE = 1400

#: (table, primary key before, primary key after)
_KEYS = (
    ("trades", 'symbol, trade_id, "timestamp"', 'market, symbol, trade_id, "timestamp"'),
    ("trade_minutes", "symbol, minute", "market, symbol, minute"),
    ("gaps", "symbol, first_id, last_id", "market, symbol, first_id, last_id"),
    ("checkpoints", "symbol", "market, symbol"),
    ("imports", "name", "market, name"),
)


def _ensure_function(columns: str) -> str:
    """0008's `binprice_ensure_trade_partitions`, moving `columns` out of DEFAULT."""
    return f"""
CREATE OR REPLACE FUNCTION binprice_ensure_trade_partitions(lo timestamptz, hi timestamptz)
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
            'AND "timestamp" < %L RETURNING {columns}) '
            'INSERT INTO %I ({columns}) SELECT {columns} FROM moved',
            month, next_month, part);
        EXECUTE format(
            'ALTER TABLE trades ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            part, month, next_month);
        RETURN NEXT part;
    END LOOP;
END
$$;
"""


_TRADE_COLUMNS = 'symbol, trade_id, price, quantity, "timestamp", is_buyer_maker'

_MERGE = """
        trades = m.trades + EXCLUDED.trades,
        volume = m.volume + EXCLUDED.volume,
        notional = m.notional + EXCLUDED.notional,
        high = greatest(m.high, EXCLUDED.high),
        low = least(m.low, EXCLUDED.low),
        open = CASE WHEN EXCLUDED.first_id < m.first_id THEN EXCLUDED.open ELSE m.open END,
        close = CASE WHEN EXCLUDED.last_id > m.last_id THEN EXCLUDED.close ELSE m.close END,
        first_id = least(m.first_id, EXCLUDED.first_id),
        last_id = greatest(m.last_id, EXCLUDED.last_id);"""
_AGGREGATES = """count(*), sum(quantity), sum(price * quantity), max(price), min(price),
           min(trade_id), max(trade_id),
           (min(ARRAY[trade_id::numeric, price]))[2], (max(ARRAY[trade_id::numeric, price]))[2]"""
_SORTED_AGGREGATES = """count(*), sum(quantity), sum(price * quantity), max(price), min(price),
           min(trade_id), max(trade_id),
           (array_agg(price ORDER BY trade_id))[1], (array_agg(price ORDER BY trade_id DESC))[1]"""
_MINUTE_VALUES = "trades, volume, notional, high, low, first_id, last_id, open, close"


def _rollup_functions(key: str) -> str:
    """The rollup's insert trigger (0011's one pass) and update/delete recompute (0005's),
    keyed by `key` (`symbol` before this revision, `market, symbol` after it)."""
    n = key.count(",") + 2  # the key's columns and the minute
    by = ", ".join(str(i) for i in range(1, n + 1))
    touched = ", ".join(f"{c} {t}" for c, t in _key_types(key)) + ", minute timestamptz"
    join = " AND ".join(f"m.{c} = t.{c}" for c, _ in _key_types(key))
    return f"""
CREATE OR REPLACE FUNCTION binprice_trade_minutes_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trade_minutes AS m ({key}, minute, {_MINUTE_VALUES})
    SELECT {key}, date_bin('1 minute', timestamp, '2000-01-01 00:00+00') AS minute,
           {_AGGREGATES}
    FROM new_trades GROUP BY {by} ORDER BY {by}
    ON CONFLICT ({key}, minute) DO UPDATE SET{_MERGE}
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION binprice_trade_minutes_recompute() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS binprice_touched_minutes ({touched}) ON COMMIT DROP;
    TRUNCATE binprice_touched_minutes;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO binprice_touched_minutes
        SELECT DISTINCT {key}, date_trunc('minute', timestamp, 'UTC') FROM old_trades;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO binprice_touched_minutes
        SELECT DISTINCT {key}, date_trunc('minute', timestamp, 'UTC') FROM new_trades;
    END IF;
    DELETE FROM trade_minutes AS m USING binprice_touched_minutes AS t
        WHERE {join} AND m.minute = t.minute;
    INSERT INTO trade_minutes ({key}, minute, {_MINUTE_VALUES})
    SELECT {key}, date_trunc('minute', timestamp, 'UTC') AS minute,
           {_SORTED_AGGREGATES}
    FROM trades
    WHERE ({key}, date_trunc('minute', timestamp, 'UTC')) IN
          (SELECT DISTINCT {key}, minute FROM binprice_touched_minutes)
    GROUP BY {by} ORDER BY {by};
    RETURN NULL;
END
$$;
"""


def _key_types(key: str) -> list[tuple[str, str]]:
    types = {"market": "smallint", "symbol": "text"}
    return [(c.strip(), types[c.strip()]) for c in key.split(",")]


def _view(with_market: bool) -> str:
    """0010's `trades_all`, with the market as its last column after this revision."""
    rows, blocks = (", market", ", b.market") if with_market else ("", "")
    return f"""
CREATE VIEW trades_all AS
SELECT symbol, trade_id, price, quantity, "timestamp", is_buyer_maker{rows} FROM trades
UNION ALL
SELECT b.symbol,
       b.first_id + coalesce(b.ids[u.i], u.i - 1) AS trade_id,
       round((b.base_price + sum(u.p) OVER w)::numeric / 10::numeric ^ b.price_scale,
             b.price_digits) AS price,
       round(u.q::numeric / 10::numeric ^ b.qty_scale, b.qty_digits) AS quantity,
       (b.first_ts + (sum(u.d) OVER w) * interval '1 millisecond')::timestamptz(3)
           AS "timestamp",
       get_bit(b.side, (u.i - 1)::int4) = 1 AS is_buyer_maker{blocks}
FROM trade_blocks AS b
CROSS JOIN LATERAL unnest(b.ms, b.price, b.qty) WITH ORDINALITY AS u(d, p, q, i)
WINDOW w AS (PARTITION BY b.market, b.symbol, b.first_ts, b.first_id ORDER BY u.i)
"""


def _rekey(table: str, key: str) -> None:
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")


def upgrade() -> None:
    op.execute("DROP VIEW trades_all")
    for table, _, key in _KEYS:
        op.execute(f"ALTER TABLE {table} ADD COLUMN market smallint NOT NULL DEFAULT 0")
        _rekey(table, key)
    op.execute("DROP INDEX ix_gaps_open")
    op.execute("CREATE INDEX ix_gaps_open ON gaps (market, symbol, first_id) WHERE state = 'open'")
    op.execute("DROP INDEX ix_imports_symbol_period_start")
    op.execute(
        "CREATE INDEX ix_imports_market_symbol_period_start "
        "ON imports (market, symbol, period_start)"
    )
    op.execute(_ensure_function(f"{_TRADE_COLUMNS}, market"))
    op.execute(_rollup_functions("market, symbol"))
    op.execute(_view(with_market=True))


_OTHER_MARKETS = " UNION ALL ".join(
    f"SELECT '{table}' FROM {table} WHERE market <> 0" for table, _, _ in _KEYS
)


def downgrade() -> None:
    op.execute(
        f"""
        DO $$
        DECLARE found text;
        BEGIN
            SELECT t INTO found FROM ({_OTHER_MARKETS}) AS o(t) LIMIT 1;
            IF found IS NOT NULL THEN
                RAISE EXCEPTION 'table % holds rows of a futures market, which revision 0011 '
                    'cannot tell from spot: delete them (WHERE market <> 0) to go back', found;
            END IF;
        END
        $$
        """
    )
    op.execute("DROP VIEW trades_all")
    op.execute(_rollup_functions("symbol"))
    op.execute(_ensure_function(_TRADE_COLUMNS))
    op.execute("DROP INDEX ix_imports_market_symbol_period_start")
    op.execute("DROP INDEX ix_gaps_open")
    for table, key, _ in _KEYS:
        _rekey(table, key)
        op.execute(f"ALTER TABLE {table} DROP COLUMN market")
    op.execute("CREATE INDEX ix_imports_symbol_period_start ON imports (symbol, period_start)")
    op.execute("CREATE INDEX ix_gaps_open ON gaps (symbol, first_id) WHERE state = 'open'")
    op.execute(_view(with_market=False))
