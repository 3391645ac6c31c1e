"""Per-minute first/last trade id, open and close in `trade_minutes`.

With the first and last trade id of every minute, completeness is checkable from the rollup
alone: a minute is whole iff `trades = last_id - first_id + 1`, and two minutes meet iff the
second's `first_id` is the first's `last_id + 1` (Binance Spot ids grow by one per trade), so
`binprice gaps --verify` over a month reads tens of thousands of rollup rows instead of millions
of trades. Open and close (the prices of the minute's lowest and highest trade id; ids grow
with time) make candles answerable from the rollup too.

The triggers stay exact however rows get in: an insert merges its minutes (a lower first id
brings its open, a higher last id its close); an update or delete recomputes the minutes it
touched, as before.

Revision ID: 0005_minute_ids
Revises: 0004_trade_minutes
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_minute_ids"
down_revision: str | None = "0004_trade_minutes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "symbol, minute, trades, volume, notional, high, low"
_AGGREGATE = """
    SELECT symbol, date_trunc('minute', timestamp, 'UTC') AS minute, count(*) AS trades,
           sum(quantity) AS volume, sum(price * quantity) AS notional,
           max(price) AS high, min(price) AS low
"""
_NEW_COLUMNS = f"{_COLUMNS}, first_id, last_id, open, close"
_NEW_AGGREGATE = f"""{_AGGREGATE},
           min(trade_id) AS first_id, max(trade_id) AS last_id,
           (array_agg(price ORDER BY trade_id))[1] AS open,
           (array_agg(price ORDER BY trade_id DESC))[1] AS close
"""


def _functions(columns: str, aggregate: str, merge: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION binprice_trade_minutes_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trade_minutes AS m ({columns})
    {aggregate}
    FROM new_trades GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (symbol, minute) DO UPDATE SET
        trades = m.trades + EXCLUDED.trades,
        volume = m.volume + EXCLUDED.volume,
        notional = m.notional + EXCLUDED.notional,
        high = greatest(m.high, EXCLUDED.high),
        low = least(m.low, EXCLUDED.low){merge};
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION binprice_trade_minutes_recompute() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS binprice_touched_minutes
        (symbol text, minute timestamptz) ON COMMIT DROP;
    TRUNCATE binprice_touched_minutes;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO binprice_touched_minutes
        SELECT DISTINCT symbol, date_trunc('minute', timestamp, 'UTC') FROM old_trades;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO binprice_touched_minutes
        SELECT DISTINCT symbol, date_trunc('minute', timestamp, 'UTC') FROM new_trades;
    END IF;
    DELETE FROM trade_minutes AS m USING binprice_touched_minutes AS t
        WHERE m.symbol = t.symbol AND m.minute = t.minute;
    INSERT INTO trade_minutes ({columns})
    {aggregate}
    FROM trades
    WHERE (symbol, date_trunc('minute', timestamp, 'UTC')) IN
          (SELECT DISTINCT symbol, minute FROM binprice_touched_minutes)
    GROUP BY 1, 2 ORDER BY 1, 2;
    RETURN NULL;
END
$$;
"""


# In SET, `m.*` are the row's values before the update, whatever the order of assignments.
_MERGE_IDS = """,
        open = CASE WHEN EXCLUDED.first_id < m.first_id THEN EXCLUDED.open ELSE m.open END,
        close = CASE WHEN EXCLUDED.last_id > m.last_id THEN EXCLUDED.close ELSE m.close END,
        first_id = least(m.first_id, EXCLUDED.first_id),
        last_id = greatest(m.last_id, EXCLUDED.last_id)"""


def upgrade() -> None:
    for name in ("first_id", "last_id"):
        op.add_column("trade_minutes", sa.Column(name, sa.BigInteger(), nullable=True))
    for name in ("open", "close"):
        op.add_column("trade_minutes", sa.Column(name, sa.Numeric(), nullable=True))
    op.execute(
        f"""
        UPDATE trade_minutes AS m SET first_id = a.first_id, last_id = a.last_id,
               open = a.open, close = a.close
        FROM ({_NEW_AGGREGATE} FROM trades GROUP BY 1, 2) AS a
        WHERE m.symbol = a.symbol AND m.minute = a.minute
        """
    )
    for name in ("first_id", "last_id", "open", "close"):
        op.alter_column("trade_minutes", name, nullable=False)
    op.execute(_functions(_NEW_COLUMNS, _NEW_AGGREGATE, _MERGE_IDS))


def downgrade() -> None:
    op.execute(_functions(_COLUMNS, _AGGREGATE, ""))
    for name in ("close", "open", "last_id", "first_id"):
        op.drop_column("trade_minutes", name)
