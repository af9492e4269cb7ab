"""Sharing copies: a row per `derived` entry, keyed by its index, not one per copy's bytes.

The same original copied alike in two cases gives the same bytes; keyed by those, the second
case's copy had no row (and its members no access to it). The table is rebuilt with the new
key, and the rows the old key dropped are restored from their `derived` entries.
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NAMES = [
    "sha256",
    "original_sha256",
    "case_id",
    "size",
    "media_type",
    "profile",
    "tool",
    "removed_json",
    "content_kind",
    "content_sha256",
    "storage_key",
    "created_by",
    "created_at",
    "event_index",
]
_TYPES = {"size": sa.BigInteger, "event_index": sa.BigInteger, "created_at": sa.DateTime}


def _copies(name: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(n, _TYPES.get(n, sa.String)) for n in _NAMES))


def _create(name: str, *key: str) -> None:
    op.create_table(
        name,
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
        sa.Column("event_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["original_sha256"], ["evidence.sha256"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.PrimaryKeyConstraint(*key),
    )


def _replace(*key: str, first_only: bool) -> None:
    """Rebuild `copies` with primary key `key`; with `first_only`, only the first row of
    each copy's bytes."""
    _create("copies_rekeyed", *key)
    old = _copies("copies")
    rows = sa.select(*(old.c[name] for name in _NAMES))
    if first_only:
        first = sa.select(sa.func.min(old.c.event_index)).group_by(old.c.sha256)
        rows = rows.where(old.c.event_index.in_(first))
    op.execute(_copies("copies_rekeyed").insert().from_select(_NAMES, rows))
    op.drop_table("copies")  # and its indexes
    op.rename_table("copies_rekeyed", "copies")
    op.create_index("ix_copies_original_sha256", "copies", ["original_sha256"])


def upgrade() -> None:
    _replace("event_index", first_only=False)
    op.create_index("ix_copies_sha256", "copies", ["sha256"])
    _restore_dropped_rows()


def _restore_dropped_rows() -> None:
    """A row for each `derived` entry that has none, from the entry and its actor."""
    connection = op.get_bind()
    events = sa.table(
        "log_events",
        sa.column("index", sa.BigInteger),
        sa.column("type", sa.String),
        sa.column("entry", sa.LargeBinary),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    users = sa.table("users", sa.column("id", sa.String), sa.column("pseudonym", sa.String))
    copies = _copies("copies")
    missing = connection.execute(
        sa.select(events.c.index, events.c.entry, events.c.created_at).where(
            events.c.type == "derived",
            events.c.index.not_in(sa.select(copies.c.event_index)),
        )
    ).all()
    user_of = dict(connection.execute(sa.select(users.c.pseudonym, users.c.id)).all())
    rows = []
    for index, entry, created_at in missing:
        event = json.loads(bytes(entry))
        if event.get("actor") in user_of:  # else no user made it: no one to attribute it to
            rows.append(_row(event, index, created_at, user_of[event["actor"]]))
    if rows:
        connection.execute(copies.insert(), rows)


def _row(event: dict[str, Any], index: int, created_at: object, user_id: str) -> dict[str, Any]:
    subject, derived = event["subject"], event["derived_from"]
    return {
        "sha256": subject["sha256"],
        "original_sha256": derived["original"],
        "case_id": event["case"],
        "size": subject["size"],
        "media_type": subject["media_type"],
        "profile": derived["profile"].split("/")[0],  # entries say "share/1", rows "share"
        "tool": derived["tool"],
        "removed_json": json.dumps(derived["removed"]),
        "content_kind": derived["content"]["kind"],
        "content_sha256": derived["content"]["sha256"],
        "storage_key": f"copies/sha256/{subject['sha256'][:2]}/{subject['sha256']}",
        "created_by": user_id,
        "created_at": created_at,
        "event_index": index,
    }


def downgrade() -> None:
    # One row per copy's bytes again: the first `derived` entry's.
    _replace("sha256", first_only=True)
