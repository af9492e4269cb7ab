"""Keyed purpose commitments: the key of each read's and each export's purpose (custody.purpose).

Reads recorded before this keep no key: their entries carry the plain SHA-256 of the
purpose. Every export is given a key now, so that one still to be logged (an interrupted
build resumed after the upgrade) commits with it; one logged already keeps its plain hash,
which `custody verify-bundle` still checks.
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_purposes") as batch:
        batch.add_column(sa.Column("purpose_key", sa.String(length=64), nullable=True))
    with op.batch_alter_table("exports") as batch:
        batch.add_column(sa.Column("purpose_key", sa.String(length=64), nullable=True))
    exports = sa.table("exports", sa.column("id", sa.String), sa.column("purpose_key", sa.String))
    connection = op.get_bind()
    for (export_id,) in connection.execute(sa.select(exports.c.id)).all():
        connection.execute(
            exports.update()
            .where(exports.c.id == export_id)
            .values(purpose_key=secrets.token_hex(32))
        )
    with op.batch_alter_table("exports") as batch:
        batch.alter_column("purpose_key", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("exports") as batch:
        batch.drop_column("purpose_key")
    with op.batch_alter_table("access_purposes") as batch:
        batch.drop_column("purpose_key")
