"""Per-symbol time index for the queries: (symbol, timestamp, trade_id) INCLUDE (price, quantity).

`ix_trades_timestamp_symbol` leads with the time, so finding a rare symbol's trade near a time
walks every other symbol's trades in between; the primary key leads with the symbol but orders by
id, not time. This index answers `at` with one probe per side and `range` as an index-only scan
in trade order (timestamp, then id for fills sharing a millisecond), for busy and rare symbols.
Its cost on ingest is measured in `benchmarks/queries.py`.

Revision ID: 0002_trades_symbol_timestamp
Revises: 0001_trades
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_trades_symbol_timestamp"
down_revision: str | None = "0001_trades"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_trades_symbol_timestamp",
        "trades",
        ["symbol", "timestamp", "trade_id"],
        postgresql_include=["price", "quantity"],
    )


def downgrade() -> None:
    op.drop_index("ix_trades_symbol_timestamp", table_name="trades")
