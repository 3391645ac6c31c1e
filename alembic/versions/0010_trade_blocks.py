"""Closed months compressed inside PostgreSQL: `trade_blocks`, `compressed_months`, `trades_all`.

The layout is the one `docs/storage-design.md` ("Recommended layout") measured and chose: one
row per block of one symbol's trades (a UTC minute for a busy symbol-month, up to 1,000 trades
within a UTC day for a sparse one), holding the trades as column arrays: times and prices as
deltas from the previous trade, quantities as integers at a per-block scale, the stored
numerics' own number of decimals (`price_digits`, `qty_digits`) so `73109.30000000` reads back
as written, trade ids as offsets from `first_id` only when they are not consecutive, and the
sides as a bit string. The codec is `binprice.compressed.codec`; this table only stores it.

**Partitions.** By UTC month of `first_ts`, like `trades`, named `trade_blocks_YYYY_MM`, so
`db prune` drops a month of blocks as it drops a month of rows. A block never crosses a
month. There is no DEFAULT partition: blocks are only written by `db compress` (and `import`
of a closed month), which make their month first. A partitioned parent takes no storage
parameters, so each month is made `WITH (toast_tuple_target = 128)` by
`binprice.db.blocks`; the arrays' `STORAGE MAIN` is declared here on the parent and copied to
each month (`LIKE … INCLUDING STORAGE`): a block is compressed in line (pglz, or lz4 where the
server has it) and moved out of line only when it still exceeds a page.

**market** is in the key from the start (0 spot, 1 USD-M, 2 COIN-M): futures (issue #19) add a
market to `trades` later, and their blocks then land beside spot's without re-encoding.

**compressed_months** says which (market, month) has blocks: readers look it up (a few rows)
to know whether a month's trades are in `trades`, in `trade_blocks`, or both (late writes
into a compressed month land in its row partition until the next `db compress` merges them).
It also keeps what the month held when compressed: trades, blocks, bytes of the blocks and
of the row form they replaced.

**trades_all** is a view for SQL users: every trade, rows and decoded blocks, with the
columns of `trades` (exact: the numerics are rebuilt with their stored number of decimals).
binprice's own readers do not use it (they decode blocks in Python, which is faster).

Revision ID: 0010_trade_blocks
Revises: 0009_prunes
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_trade_blocks"
down_revision: str | None = "0009_prunes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = postgresql.TIMESTAMP(timezone=True, precision=3)
#: The arrays (and the bit string) compressed in line rather than moved out of line.
ARRAY_COLUMNS = ("ids", "side", "ms", "price", "qty")

#: The blocks as trade rows: price and time by running sums of the deltas (in array order),
#: decimals rebuilt at the block's scale and padded to its stored digits.
TRADES_ALL_SQL = """
CREATE VIEW trades_all AS
SELECT symbol, trade_id, price, quantity, "timestamp", is_buyer_maker FROM trades
UNION ALL
SELECT b.symbol,
       b.first_id + coalesce(b.ids[u.i], u.i - 1) AS trade_id,
       round((b.base_price + sum(u.p) OVER w)::numeric / 10::numeric ^ b.price_scale,
             b.price_digits) AS price,
       round(u.q::numeric / 10::numeric ^ b.qty_scale, b.qty_digits) AS quantity,
       (b.first_ts + (sum(u.d) OVER w) * interval '1 millisecond')::timestamptz(3)
           AS "timestamp",
       get_bit(b.side, (u.i - 1)::int4) = 1 AS is_buyer_maker
FROM trade_blocks AS b
CROSS JOIN LATERAL unnest(b.ms, b.price, b.qty) WITH ORDINALITY AS u(d, p, q, i)
WINDOW w AS (PARTITION BY b.market, b.symbol, b.first_ts, b.first_id ORDER BY u.i)
"""


def upgrade() -> None:
    op.create_table(
        "trade_blocks",
        sa.Column("market", sa.SmallInteger(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("first_ts", _TS, nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("last_ts", _TS, nullable=False),
        sa.Column("base_price", sa.BigInteger(), nullable=False),
        sa.Column("price_scale", sa.SmallInteger(), nullable=False),
        sa.Column("qty_scale", sa.SmallInteger(), nullable=False),
        sa.Column("price_digits", sa.SmallInteger(), nullable=False),
        sa.Column("qty_digits", sa.SmallInteger(), nullable=False),
        sa.Column("ids", postgresql.ARRAY(sa.Integer()), nullable=True),
        sa.Column("side", postgresql.BIT(varying=True), nullable=False),
        sa.Column("ms", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("price", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("qty", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.PrimaryKeyConstraint("market", "symbol", "first_ts", "first_id", name="pk_trade_blocks"),
        sa.CheckConstraint("symbol = upper(symbol)", name="ck_trade_blocks_symbol_upper"),
        sa.CheckConstraint("first_id <= last_id", name="ck_trade_blocks_ids"),
        sa.CheckConstraint("trades > 0", name="ck_trade_blocks_trades"),
        postgresql_partition_by="RANGE (first_ts)",
    )
    for column in ARRAY_COLUMNS:
        op.execute(f"ALTER TABLE trade_blocks ALTER COLUMN {column} SET STORAGE MAIN")
    op.create_table(
        "compressed_months",
        sa.Column("market", sa.SmallInteger(), nullable=False),
        sa.Column("month", _TS, nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("blocks", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("row_bytes", sa.BigInteger(), nullable=False),
        sa.Column("compressed_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("market", "month", name="pk_compressed_months"),
    )
    op.execute(TRADES_ALL_SQL)


def downgrade() -> None:
    op.execute("DROP VIEW trades_all")
    op.drop_table("compressed_months")
    op.drop_table("trade_blocks")
