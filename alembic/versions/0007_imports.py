"""The imports table: every archive file `binprice import` loaded, and how far.

One row per file of Binance's public archive (data.binance.vision), keyed by its name
(`BTCUSDT-trades-2024-01.zip`: the name carries the symbol and the period). A file is loaded in
chunks, each committed with this row in the same transaction, so after a crash the row says
exactly what is stored: `partial` with `last_id` the highest id committed (the next run resumes
after it), or `done`. `sha256` is the checksum the file was verified against: a re-run skips a
`done` file whose published checksum is unchanged and imports a republished one again.

Revision ID: 0007_imports
Revises: 0006_checkpoints
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_imports"
down_revision: str | None = "0006_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("inserted", sa.BigInteger(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=True),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column(
            "imported_at",
            postgresql.TIMESTAMP(timezone=True, precision=3),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("state IN ('partial', 'done')", name="ck_imports_state_known"),
        sa.CheckConstraint("period_start < period_end", name="ck_imports_period"),
        sa.CheckConstraint("first_id <= last_id", name="ck_imports_ids"),
        sa.PrimaryKeyConstraint("name", name="pk_imports"),
    )
    op.create_index("ix_imports_symbol_period_start", "imports", ["symbol", "period_start"])


def downgrade() -> None:
    op.drop_index("ix_imports_symbol_period_start", table_name="imports")
    op.drop_table("imports")
