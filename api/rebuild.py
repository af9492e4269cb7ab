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
from custody.errors import TileError
from custody.events import decode_entry
from custody.merkle import MerkleFrontier, leaf_hash
from custody.note import Verifier
from custody.tiles import bundle_path, bundles_for_size, decode_bundle


@dataclass
class RebuildReport:
    size: int = 0
    events: int = 0
    evidence: int = 0
    differences: list[str] = field(default_factory=list)


def published_entries(
    log_store: LogStore, verifier: Verifier
) -> tuple[int, bytes, Iterator[bytes]]:
    """The verified checkpoint's size and root, and every entry up to it, from the bundles.

    The iterator raises TileError after the last entry unless the entries hash to the signed
    root: the bundles are only as trustworthy as the signature, so a caller that writes
    what it reads must do so in a transaction that this error rolls back.
    """
    checkpoint = open_checkpoint(log_store.read(CHECKPOINT), verifier)

    def entries() -> Iterator[bytes]:
        frontier = MerkleFrontier.empty()
        for bundle in bundles_for_size(checkpoint.size):
            batch = decode_bundle(log_store.read_bundle(bundle))
            if len(batch) != bundle.width:
                raise TileError(
                    f"{bundle_path(bundle)} holds {len(batch)} entries, not {bundle.width}"
                )
            frontier = frontier.append(map(leaf_hash, batch))
            yield from batch
        if frontier.root() != checkpoint.root:
            raise TileError(
                f"the entry bundles do not hash to the root signed for size {checkpoint.size}: "
                "run `custody audit` to name the changed objects"
            )

    return checkpoint.size, checkpoint.root, entries()


def rebuild_index(engine: Engine, log_store: LogStore, verifier: Verifier) -> RebuildReport:
    """Fill an empty, migrated database with the events and evidence the log holds."""
    with session_scope(engine) as session:
        for table in (LogEvent, Evidence):
            if session.exec(select(func.count()).select_from(table)).one():
                raise ValueError(
                    f"the target database already holds {table.__tablename__} rows: "
                    "rebuild into an empty one"
                )
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
                row = _evidence_row(subject, _time(event["time"]), event.get("metadata"))
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
        actor=str(event["actor"]) if "actor" in event else None,
    )


def _evidence_row(subject: dict[str, object], time: datetime, metadata: object) -> Evidence:
    """The original as its first ingest indexed it: its time and its sealed metadata sidecar."""
    sha256 = str(subject["sha256"])
    digests = subject.get("digests") or {}
    return Evidence(
        sha256=sha256,
        size=int(str(subject["size"])),
        media_type=str(subject["media_type"]),
        digests_json=json.dumps(digests, sort_keys=True),
        storage_key=original_key(sha256),
        first_seen_at=time,
        metadata_sha256=str(metadata["sha256"]) if isinstance(metadata, dict) else None,
    )


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
