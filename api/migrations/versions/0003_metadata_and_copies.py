"""Sealed metadata sidecars of originals, and sharing copies."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("metadata_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ingests") as batch:
        batch.add_column(sa.Column("metadata_sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "copies",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_sha256", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("removed_json", sa.String(), nullable=False),
        sa.Column("content_kind", sa.String(length=64), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["original_sha256"], ["evidence.sha256"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("copies") as batch:
        batch.create_index("ix_copies_original_sha256", ["original_sha256"], unique=False)


def downgrade() -> None:
    op.drop_table("copies")
    with op.batch_alter_table("ingests") as batch:
        batch.drop_column("metadata_sha256")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("metadata_sha256")
