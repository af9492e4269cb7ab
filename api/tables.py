"""Database tables (sqlmodel): the index of users, cases, evidence and the custody events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Dialect, LargeBinary, String
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("datetimes stored must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    role: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=_utc())
    # How the custody log names this user: stable, random, never their name.
    pseudonym: str | None = Field(default=None, unique=True, index=True, max_length=64)


class ApiToken(SQLModel, table=True):
    """An API token, stored only as the SHA-256 of the secret (which is random, 256 bits)."""

    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    token_sha256: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = Field(sa_column=_utc())
    expires_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    label: str | None = Field(default=None, max_length=200)


class Case(SQLModel, table=True):
    __tablename__ = "cases"

    id: str = Field(primary_key=True, max_length=64)
    title: str = Field(max_length=500)
    created_by: str = Field(foreign_key="users.id", max_length=64)
    created_at: datetime = Field(sa_column=_utc())


class Evidence(SQLModel, table=True):
    """One original, by content address; stored once however often it is ingested."""

    __tablename__ = "evidence"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    media_type: str = Field(max_length=255)
    digests_json: str = Field(default="{}", description="extra digests, JSON object")
    storage_key: str = Field(max_length=1024)
    first_seen_at: datetime = Field(sa_column=_utc())
    metadata_sha256: str | None = Field(default=None, max_length=64)  # sealed sidecar


class Ingest(SQLModel, table=True):
    """One act of collection: who brought which bytes into which case, and what they said."""

    __tablename__ = "ingests"

    id: str = Field(primary_key=True, max_length=64)  # the custody event's id
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=64)
    sha256: str = Field(foreign_key="evidence.sha256", index=True, max_length=64)
    actor_id: str = Field(foreign_key="users.id", max_length=64)
    filename: str | None = Field(default=None, max_length=255)
    declared_media_type: str | None = Field(default=None, max_length=255)
    received_at: datetime = Field(sa_column=_utc())
    event_index: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    metadata_sha256: str | None = Field(default=None, max_length=64)


class LogEvent(SQLModel, table=True):
    """A sequenced custody event: its gap-free index and its canonical entry bytes.

    The index is the entry's position in the Merkle log; `entry` is exactly the leaf data
    (RFC 6962 leaf input), so the integrator needs nothing else.
    """

    __tablename__ = "log_events"

    index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_id: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    type: str = Field(max_length=32)
    subject_sha256: str | None = Field(default=None, index=True, max_length=64)
    case_id: str | None = Field(default=None, index=True, max_length=64)
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=_utc())
    actor: str | None = Field(default=None, max_length=64)  # the entry's actor pseudonym


class LogSequence(SQLModel, table=True):
    """A single row holding the next index; updating it serialises appenders (row lock)."""

    __tablename__ = "log_sequence"

    id: int = Field(primary_key=True)
    next_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class LogState(SQLModel, table=True):
    """The integrated log: its size and root as last published, and the integrator's lease.

    The object store is the source of truth; this row is an index of it that lets receipt
    waiters in any process see progress, and lets exactly one process integrate at a time.
    """

    __tablename__ = "log_state"

    id: int = Field(primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: str = Field(max_length=64)
    lease_holder: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    updated_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class SharingCopy(SQLModel, table=True):
    """A sharing copy: stripped of metadata, linked to its original by a `derived` event.

    A row per `derived` entry: the same original copied alike in several cases gives the
    same bytes, and each case reaches them through its own entry (and logs reads in it).
    """

    __tablename__ = "copies"

    sha256: str = Field(index=True, max_length=64)
    original_sha256: str = Field(foreign_key="evidence.sha256", index=True, max_length=64)
    case_id: str = Field(foreign_key="cases.id", max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    media_type: str = Field(max_length=255)
    profile: str = Field(max_length=64)
    tool: str = Field(max_length=64)
    removed_json: str = Field(default="[]")
    content_kind: str = Field(max_length=64)
    content_sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=1024)
    created_by: str = Field(foreign_key="users.id", max_length=64)
    created_at: datetime = Field(sa_column=_utc())
    event_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class CheckpointTimestamp(SQLModel, table=True):
    """One TSA's RFC 3161 token over one archived checkpoint: pending until stored.

    The token itself is an immutable object next to the checkpoint (`checkpoints/<size>.tsr.<slot>`
    under the log prefix); this row tracks requests, retries and the token's time.
    """

    __tablename__ = "checkpoint_timestamps"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    tsa: str = Field(primary_key=True, max_length=64)
    slot: int
    status: str = Field(max_length=16, index=True)  # "pending" or "stored"
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_utc())
    last_error: str | None = Field(default=None, max_length=1024)
    gen_time: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    chain_pem: str | None = None
    updated_at: datetime = Field(sa_column=_utc())


class TsaState(SQLModel, table=True):
    """The built-in TSA's serial-number epoch: bumped at every start, so serials
    (epoch << 64 | counter) never repeat across restarts or processes."""

    __tablename__ = "tsa_state"

    id: int = Field(primary_key=True)
    epoch: int = Field(sa_column=Column(BigInteger, nullable=False))


class CaseMember(SQLModel, table=True):
    """Who may see a case and its evidence (need to know): membership decides everything."""

    __tablename__ = "case_members"

    case_id: str = Field(foreign_key="cases.id", primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", primary_key=True, index=True, max_length=64)
    added_by: str = Field(max_length=64)
    added_at: datetime = Field(sa_column=_utc())


class AccessPurpose(SQLModel, table=True):
    """The stated purpose of a read and its key; the `accessed` entry carries only the
    keyed hash of the text (custody.purpose). No key: recorded before keys, a plain SHA-256."""

    __tablename__ = "access_purposes"

    event_id: str = Field(primary_key=True, max_length=64)
    purpose: str = Field(max_length=1000)
    purpose_key: str | None = Field(default=None, max_length=64)  # hex


class ExportJob(SQLModel, table=True):
    """An exhibit bundle: requested, being built, ready (sealed in the store) or failed."""

    __tablename__ = "exports"

    id: str = Field(primary_key=True, max_length=64)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=64)
    created_by: str = Field(foreign_key="users.id", max_length=64)
    actor: str = Field(max_length=64)  # the creator's pseudonym, as the log names them
    purpose: str = Field(max_length=1000)
    purpose_key: str = Field(max_length=64)  # hex; the `exported` entries commit with it
    items_json: str = Field(description="the requested SHA-256s, in exhibit order")
    status: str = Field(max_length=16, index=True)  # building, ready or failed
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())  # a building export's heartbeat
    manifest_sha256: str | None = Field(default=None, max_length=64)
    checkpoint_size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    bag_sha256: str | None = Field(default=None, max_length=64)
    bag_size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    storage_key: str | None = Field(default=None, max_length=1024)
