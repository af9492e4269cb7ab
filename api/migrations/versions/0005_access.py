"""People, cases and access: pseudonyms, case membership, and the purposes of reads."""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("pseudonym", sa.String(length=64), nullable=True))
    users = sa.table("users", sa.column("id", sa.String), sa.column("pseudonym", sa.String))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        pseudonym = f"p_{secrets.token_urlsafe(12)}"
        connection.execute(users.update().where(users.c.id == user_id).values(pseudonym=pseudonym))
    op.create_index("ix_users_pseudonym", "users", ["pseudonym"], unique=True)
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("label", sa.String(length=200), nullable=True))
    op.create_table(
        "case_members",
        sa.Column("case_id", sa.String(length=64), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "user_id"),
    )
    op.create_index("ix_case_members_user_id", "case_members", ["user_id"])
    op.create_table(
        "access_purposes",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("log_events") as batch:
        batch.add_column(sa.Column("actor", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_events") as batch:
        batch.drop_column("actor")
    op.drop_table("access_purposes")
    op.drop_index("ix_case_members_user_id", table_name="case_members")
    op.drop_table("case_members")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("label")
    op.drop_index("ix_users_pseudonym", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("pseudonym")
