"""Aggregate trades: their own table per market, and a kind in the completeness tables (#19).

Binance's aggregate trades (`@aggTrade`, REST `aggTrades`, the archives' `aggTrades` files)
merge the trades of one taker order at one price: `a` (the aggregate id, consecutive per
symbol of a market), `p`, `q` (the merged quantity), `f`..`l` (the trade ids merged), `T`, `m`.
They are a series of their own, with their own ids, so they get their own table rather than
columns of `trades`:

    agg_trades (symbol, agg_id, price, quantity, first_trade_id, last_trade_id, "timestamp",
                is_buyer_maker, market)

keyed by `(market, symbol, agg_id)`, with `(market, symbol, "timestamp")` for the questions by
time (`at`, `range`, `candles`, `export`). Prices and quantities are exact `numeric`, times
`timestamptz(3)`, the market last as in `trades` (0012: it fits the row's padding). The
table is not partitioned: an aggregate series has about a tenth of the rows of its trades,
and `prune` deletes its old rows.

**Completeness by aggregate id.** `gaps` and `checkpoints` record ranges of ids and how far
they were verified; an aggregate id and a trade id of the same symbol are different numbers,
so both tables gain `kind` (0 trades, 1 aggregate trades: `binprice.kinds.TradeKind.number`),
in their keys after the market. `imports` gains it too, so that the planner tells a symbol's
imported trade files from its aggregate files (the key, the archive's file name, already
differs: `BTCUSDT-trades-…` and `BTCUSDT-aggTrades-…`). Every existing row is of trades:
`DEFAULT 0`, recorded in the catalog without a rewrite.

**Downgrade** refuses while the database holds any aggregate trade or any row of kind 1.

Revision ID: 0013_agg_trades
Revises: 0012_market
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_agg_trades"
down_revision: str | None = "0012_market"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, primary key before, primary key after)
_KEYS = (
    ("gaps", "market, symbol, first_id, last_id", "market, kind, symbol, first_id, last_id"),
    ("checkpoints", "market, symbol", "market, kind, symbol"),
)


def _rekey(table: str, key: str) -> None:
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE agg_trades (
            symbol text NOT NULL,
            agg_id bigint NOT NULL,
            price numeric NOT NULL,
            quantity numeric NOT NULL,
            first_trade_id bigint NOT NULL,
            last_trade_id bigint NOT NULL,
            "timestamp" timestamptz(3) NOT NULL,
            is_buyer_maker boolean NOT NULL,
            market smallint NOT NULL DEFAULT 0,
            CONSTRAINT pk_agg_trades PRIMARY KEY (market, symbol, agg_id),
            CONSTRAINT ck_agg_trades_symbol_upper CHECK (symbol = upper(symbol)),
            CONSTRAINT ck_agg_trades_trade_ids CHECK (first_trade_id <= last_trade_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_agg_trades_market_symbol_timestamp "
        'ON agg_trades (market, symbol, "timestamp")'
    )
    for table, _, key in _KEYS:
        op.execute(f"ALTER TABLE {table} ADD COLUMN kind smallint NOT NULL DEFAULT 0")
        _rekey(table, key)
    op.execute("ALTER TABLE imports ADD COLUMN kind smallint NOT NULL DEFAULT 0")
    op.execute("DROP INDEX ix_gaps_open")
    op.execute(
        "CREATE INDEX ix_gaps_open ON gaps (market, kind, symbol, first_id) WHERE state = 'open'"
    )
    op.execute("DROP INDEX ix_imports_market_symbol_period_start")
    op.execute(
        "CREATE INDEX ix_imports_market_kind_symbol_period_start "
        "ON imports (market, kind, symbol, period_start)"
    )


def downgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM agg_trades)
               OR EXISTS (SELECT FROM gaps WHERE kind <> 0)
               OR EXISTS (SELECT FROM checkpoints WHERE kind <> 0)
               OR EXISTS (SELECT FROM imports WHERE kind <> 0) THEN
                RAISE EXCEPTION 'the database holds aggregate trades, which revision 0012 '
                    'cannot store: delete them (agg_trades, and WHERE kind <> 0 in gaps, '
                    'checkpoints and imports) to go back';
            END IF;
        END
        $$
        """
    )
    op.execute("DROP INDEX ix_imports_market_kind_symbol_period_start")
    op.execute(
        "CREATE INDEX ix_imports_market_symbol_period_start "
        "ON imports (market, symbol, period_start)"
    )
    op.execute("DROP INDEX ix_gaps_open")
    op.execute("CREATE INDEX ix_gaps_open ON gaps (market, symbol, first_id) WHERE state = 'open'")
    op.execute("ALTER TABLE imports DROP COLUMN kind")
    for table, key, _ in _KEYS:
        _rekey(table, key)
        op.execute(f"ALTER TABLE {table} DROP COLUMN kind")
    op.execute("DROP TABLE agg_trades")
