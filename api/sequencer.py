"""Appending custody events to the sequenced table: a gap-free index in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, bindparam, insert, select, update
from sqlmodel import Session, col

from api.ids import new_id
from api.tables import LogEvent, LogSequence
from custody.events import CustodyEvent, administrative, encode_entry

# Core statements on the tables, built once: the ORM's unit of work and per-call statement
# building cost more than the SQL itself, and these run once per event inside the group commit.
_SEQUENCE: Table = LogSequence.__table__  # type: ignore[attr-defined]
_NEXT_INDICES = (
    update(_SEQUENCE)
    .where(_SEQUENCE.c.id == 1)
    .values(next_index=_SEQUENCE.c.next_index + bindparam("count"))
    .returning(_SEQUENCE.c.next_index)
)
_INSERT_EVENT = insert(LogEvent.__table__)  # type: ignore[attr-defined]


def append_event(
    session: Session, event: CustodyEvent, *, now: datetime, entry: bytes | None = None
) -> int:
    """Give `event` the next index and store its entry; return the index.

    The UPDATE takes the sequence row's lock (PostgreSQL row lock; SQLite's write lock, as
    every transaction there begins IMMEDIATE), held until the caller's transaction ends, so
    appenders in any number of processes queue and a rolled-back append leaves no gap.
    `entry` is `encode_entry(event)` when the caller encoded it already, outside the group
    commit that every appender waits for.
    """
    entry = encode_entry(event) if entry is None else entry
    return append_events(session, [(event, entry)], now=[now])[0]


def append_events(
    session: Session, events: Sequence[tuple[CustodyEvent, bytes]], *, now: Sequence[datetime]
) -> list[int]:
    """Give each (event, its encoded entry) the next index, in order, with one UPDATE of the
    sequence and one INSERT for all of them; return the indices. `now[i]` is event i's
    `created_at`. The locking is `append_event`'s."""
    # Core statements on the session's connection: through the session itself, each would
    # also pass the ORM's execution machinery, for nothing it needs.
    connection = session.connection()
    last = int(connection.execute(_NEXT_INDICES, {"count": len(events)}).scalar_one())
    first = last - len(events)
    connection.execute(
        _INSERT_EVENT,
        [
            {
                "index": first + offset,
                "event_id": event.id,
                "type": event.type,
                "subject_sha256": event.subject.sha256 if event.subject else None,
                "case_id": event.case,
                "entry": entry,
                "created_at": created,
                "actor": event.actor,
            }
            for offset, ((event, entry), created) in enumerate(zip(events, now, strict=True))
        ],
    )
    return list(range(first, last))


def append_admin_event(
    session: Session,
    kind: str,
    *,
    actor: str,
    now: datetime,
    case: str | None = None,
    target: str | None = None,
    role: str | None = None,
) -> int:
    """Append a case, membership, token or pseudonym event in the caller's transaction."""
    event = administrative(
        kind, event_id=new_id("e"), time=now, actor=actor, case=case, target=target, role=role
    )
    return append_event(session, event, now=now)


def lock_sequence(session: Session) -> None:
    """Take the sequence row's lock first in a transaction that appends after other writes.

    Every appender then takes its locks in the same order (sequence row, then the rows it
    inserts), so two processes' group commits queue instead of deadlocking on PostgreSQL.
    SQLite needs nothing: its transactions begin with the database's write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(col(LogSequence.next_index)).where(col(LogSequence.id) == 1).with_for_update()
        )
