"""The gaps table: every trade-id range the ingestor found missing, and what became of it.

A row is written when a gap is detected (before any trade beyond it is committed), so a hole in
`trades` is never silent: `state` says whether it is still being fetched (`open`), was fetched
(`filled`), does not exist on the exchange (`hole`) or was left out on purpose because it was
larger than `--backfill-max` (`skipped`). `binprice gaps --verify` checks the table against the
stored ids.

Revision ID: 0003_gaps
Revises: 0002_trades_symbol_timestamp
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_gaps"
down_revision: str | None = "0002_trades_symbol_timestamp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gaps",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "detected_at",
            postgresql.TIMESTAMP(timezone=True, precision=3),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("filled_at", postgresql.TIMESTAMP(timezone=True, precision=3), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.CheckConstraint("first_id <= last_id", name="ck_gaps_range"),
        sa.CheckConstraint(
            "state IN ('open', 'filled', 'hole', 'skipped')", name="ck_gaps_state_known"
        ),
        sa.PrimaryKeyConstraint("symbol", "first_id", "last_id", name="pk_gaps"),
    )
    op.create_index(
        "ix_gaps_open", "gaps", ["symbol", "first_id"], postgresql_where=sa.text("state = 'open'")
    )


def downgrade() -> None:
    op.drop_index("ix_gaps_open", table_name="gaps")
    op.drop_table("gaps")
