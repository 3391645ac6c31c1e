"""Per-symbol completeness checkpoints: the id through which the stored ids were verified.

`binprice ingest` checks at start that every id stored since the last check is stored or
accounted for by a recorded gap (holes nobody recorded — rows deleted by hand, a crashed run's
lost spool — are recorded and fetched), then moves the checkpoint to the highest stored id, so
each start examines only what was written since the previous one.

Revision ID: 0006_checkpoints
Revises: 0005_minute_ids
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_checkpoints"
down_revision: str | None = "0005_minute_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("verified_through", sa.BigInteger(), nullable=False),
        sa.Column(
            "verified_at",
            postgresql.TIMESTAMP(timezone=True, precision=3),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("symbol", name="pk_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("checkpoints")
