"""The trades table.

Revision ID: 0001_trades
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_trades"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trades",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=False),
        sa.Column("timestamp", postgresql.TIMESTAMP(timezone=True, precision=3), nullable=False),
        sa.Column("is_buyer_maker", sa.Boolean(), nullable=False),
        sa.CheckConstraint("symbol = upper(symbol)", name="ck_trades_symbol_upper"),
        sa.PrimaryKeyConstraint("symbol", "trade_id", name="pk_trades"),
    )
    op.create_index("ix_trades_timestamp_symbol", "trades", [sa.text("timestamp DESC"), "symbol"])


def downgrade() -> None:
    op.drop_index("ix_trades_timestamp_symbol", table_name="trades")
    op.drop_table("trades")
