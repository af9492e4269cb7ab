"""Rebuilding the database index (evidence and events) from the log in the object store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, update
from sqlmodel import col, select

from api.database import session_scope
from api.evidence import original_key
from api.logstore import CHECKPOINT, LogStore
from api.tables import Evidence, LogEvent, LogSequence, LogState
from custody.checkpoint import open_checkpoint
from custody.events import decode_entry
from custody.note import Verifier
from custody.tiles import Bundle, decode_bundle

BUNDLE = 256


@dataclass
class RebuildReport:
    size: int = 0
    events: int = 0
    evidence: int = 0
    differences: list[str] = field(default_factory=list)


def published_entries(
    log_store: LogStore, verifier: Verifier
) -> tuple[int, bytes, Iterator[bytes]]:
    """The verified checkpoint's size and root, and every entry up to it, from the bundles."""
    checkpoint = open_checkpoint(log_store.read(CHECKPOINT), verifier)

    def entries() -> Iterator[bytes]:
        for start in range(0, checkpoint.size, BUNDLE):
            width = min(BUNDLE, checkpoint.size - start)
            yield from decode_bundle(log_store.read_bundle(Bundle(start // BUNDLE, width)))

    return checkpoint.size, checkpoint.root, entries()


def rebuild_index(engine: Engine, log_store: LogStore, verifier: Verifier) -> RebuildReport:
    """Fill an empty, migrated database with the events and evidence the log holds."""
    with session_scope(engine) as session:
        if session.exec(select(func.count()).select_from(LogEvent)).one():
            raise ValueError("the target database already holds events: rebuild into an empty one")
    size, root, entries = published_entries(log_store, verifier)
    report = RebuildReport(size=size)
    seen: dict[str, Evidence] = {}
    with session_scope(engine) as session:
        for index, entry in enumerate(entries):
            event = decode_entry(entry)
            session.add(_event_row(index, entry, event))
            report.events += 1
            subject = event.get("subject")
            if event["type"] == "ingested" and subject and subject["sha256"] not in seen:
                row = _evidence_row(subject, _time(event["time"]))
                seen[row.sha256] = row
                session.add(row)
            if index % 1000 == 999:
                session.flush()
        session.execute(update(LogSequence).where(col(LogSequence.id) == 1).values(next_index=size))
        session.execute(
            update(LogState).where(col(LogState.id) == 1).values(size=size, root=root.hex())
        )
    report.evidence = len(seen)
    return report


def compare_index(engine: Engine, log_store: LogStore, verifier: Verifier) -> RebuildReport:
    """Compare the database's events with the published log; name every difference."""
    size, _, entries = published_entries(log_store, verifier)
    report = RebuildReport(size=size)
    with session_scope(engine) as session:
        for index, entry in enumerate(entries):
            row = session.get(LogEvent, index)
            report.events += 1
            if row is None:
                report.differences.append(f"entry {index}: missing from the database")
            elif row.entry != entry:
                report.differences.append(
                    f"entry {index}: the database's bytes differ from the log's"
                )
    return report


def _event_row(index: int, entry: bytes, event: dict[str, object]) -> LogEvent:
    subject = event.get("subject")
    return LogEvent(
        index=index,
        event_id=str(event["id"]),
        type=str(event["type"]),
        subject_sha256=subject["sha256"] if isinstance(subject, dict) else None,
        case_id=str(event["case"]) if "case" in event else None,
        entry=entry,
        created_at=_time(str(event["time"])),
    )


def _evidence_row(subject: dict[str, object], time: datetime) -> Evidence:
    sha256 = str(subject["sha256"])
    digests = subject.get("digests") or {}
    return Evidence(
        sha256=sha256,
        size=int(str(subject["size"])),
        media_type=str(subject["media_type"]),
        digests_json=json.dumps(digests, sort_keys=True),
        storage_key=original_key(sha256),
        first_seen_at=time,
    )


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
