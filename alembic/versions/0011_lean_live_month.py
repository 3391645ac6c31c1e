"""A lean live month: no covering per-symbol time index, a cheaper rollup insert trigger.

Live capture writes every trade into the current month's partition of `trades`, and each
index and trigger on it costs every COPY. Measured with `benchmarks/storage.py --only lean`
(300,000 trades at ~1,000 a minute in committed 10,000-trade COPYs), the writing backend's CPU
per trade: the seed design's bare table 2.1 µs; 0009 7.5 µs; without the covering index
`ix_trades_symbol_timestamp (symbol, timestamp, trade_id) INCLUDE (price, quantity)` (0002)
5.8 µs, and 211 instead of 316 bytes a trade; with this one-pass rollup trigger as well 5.1 µs
(no trigger at all: 3.6). See docs/storage-design.md, "Live month".

**The covering index goes.** `at` and the partial minutes of `range` find a symbol's trades
near a time through the rollup instead: `trade_minutes` holds, per symbol and minute, the
lowest and highest trade id (0005), so the trades of a minute are a range of the primary key
`(symbol, trade_id, timestamp)`, which every writer needs anyway. See `binprice.db.queries`.
The seed index `(timestamp DESC, symbol)` and the primary key stay.

**The insert trigger aggregates in one pass.** The minute's open and close were two
`array_agg(price ORDER BY trade_id)`, a sort of every minute's rows twice per statement; they
become `min(ARRAY[trade_id, price])` / `max(…)` (the price of the lowest / highest id, exactly
as before), and the UTC minute is `date_bin('1 minute', timestamp, '2000-01-01 00:00+00')`,
plain arithmetic on the stored instant, equal to `date_trunc('minute', timestamp, 'UTC')` for
every timestamp but cheaper than a time-zone lookup per row. Same rows in `trade_minutes`, about
a third of the aggregate's time. The update/delete recompute function (rare) is unchanged.

Existing partitions lose their copy of the index with the parent's (one DROP INDEX on the
partitioned index drops every partition's); months made later never get it, since a partition
takes its indexes from the parent's when `binprice_ensure_trade_partitions` attaches it.
The downgrade builds the index again on every partition (as long as that takes).

Revision ID: 0011_lean_live_month
Revises: 0010_trade_blocks
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_lean_live_month"
down_revision: str | None = "0010_trade_blocks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "symbol, minute, trades, volume, notional, high, low, first_id, last_id, open, close"
_MERGE = """
    ON CONFLICT (symbol, minute) DO UPDATE SET
        trades = m.trades + EXCLUDED.trades,
        volume = m.volume + EXCLUDED.volume,
        notional = m.notional + EXCLUDED.notional,
        high = greatest(m.high, EXCLUDED.high),
        low = least(m.low, EXCLUDED.low),
        open = CASE WHEN EXCLUDED.first_id < m.first_id THEN EXCLUDED.open ELSE m.open END,
        close = CASE WHEN EXCLUDED.last_id > m.last_id THEN EXCLUDED.close ELSE m.close END,
        first_id = least(m.first_id, EXCLUDED.first_id),
        last_id = greatest(m.last_id, EXCLUDED.last_id);"""

#: One pass per statement: no sort but the GROUP BY's.
LEAN_ADD = f"""
CREATE OR REPLACE FUNCTION binprice_trade_minutes_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trade_minutes AS m ({_COLUMNS})
    SELECT symbol, date_bin('1 minute', timestamp, '2000-01-01 00:00+00') AS minute,
           count(*), sum(quantity), sum(price * quantity), max(price), min(price),
           min(trade_id), max(trade_id),
           (min(ARRAY[trade_id::numeric, price]))[2], (max(ARRAY[trade_id::numeric, price]))[2]
    FROM new_trades GROUP BY 1, 2 ORDER BY 1, 2{_MERGE}
    RETURN NULL;
END
$$;
"""

#: The function as 0005 left it.
SORTED_ADD = f"""
CREATE OR REPLACE FUNCTION binprice_trade_minutes_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trade_minutes AS m ({_COLUMNS})
    SELECT symbol, date_trunc('minute', timestamp, 'UTC') AS minute, count(*) AS trades,
           sum(quantity) AS volume, sum(price * quantity) AS notional,
           max(price) AS high, min(price) AS low,
           min(trade_id) AS first_id, max(trade_id) AS last_id,
           (array_agg(price ORDER BY trade_id))[1] AS open,
           (array_agg(price ORDER BY trade_id DESC))[1] AS close
    FROM new_trades GROUP BY 1, 2 ORDER BY 1, 2{_MERGE}
    RETURN NULL;
END
$$;
"""


#: The index 0002 made, as the downgrade builds it again.
COVERING_INDEX = """
CREATE INDEX ix_trades_symbol_timestamp ON trades (symbol, "timestamp", trade_id)
    INCLUDE (price, quantity)
"""


def upgrade() -> None:
    op.drop_index("ix_trades_symbol_timestamp", table_name="trades")
    op.execute(LEAN_ADD)


def downgrade() -> None:
    op.execute(SORTED_ADD)
    op.execute(COVERING_INDEX)
