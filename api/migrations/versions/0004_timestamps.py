"""RFC 3161 timestamps over checkpoints, and the built-in TSA's serial epoch."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoint_timestamps",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("tsa", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("gen_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("chain_pem", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", "tsa"),
    )
    op.create_index("ix_checkpoint_timestamps_status", "checkpoint_timestamps", ["status"])
    tsa_state = op.create_table(
        "tsa_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(tsa_state, [{"id": 1, "epoch": 0}])


def downgrade() -> None:
    op.drop_table("tsa_state")
    op.drop_index("ix_checkpoint_timestamps_status", table_name="checkpoint_timestamps")
    op.drop_table("checkpoint_timestamps")
