"""The prunes table: where `binprice db prune` cut the stored history off.

`binprice db prune --older-than DUR` drops whole monthly partitions of `trades` (0008). Without
a record, the completeness check would take the missing months for lost trades (or, with
`--keep-rollup`, find rollup minutes whose trades are gone). One row per cut: `pruned_before`
(every trade before it was dropped: the end of the newest month dropped), when, what it
dropped (partitions, trades counted from the rollup, bytes) and whether the rollup minutes
were kept. `gaps --verify` starts at the newest `pruned_before`.

Revision ID: 0009_prunes
Revises: 0008_trades_partitioned
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_prunes"
down_revision: str | None = "0008_trades_partitioned"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prunes",
        sa.Column(
            "pruned_before", postgresql.TIMESTAMP(timezone=True, precision=3), nullable=False
        ),
        sa.Column(
            "pruned_at",
            postgresql.TIMESTAMP(timezone=True, precision=3),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("partitions", sa.Integer(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("rollup_kept", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("pruned_before", name="pk_prunes"),
    )


def downgrade() -> None:
    op.drop_table("prunes")
