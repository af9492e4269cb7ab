"""Ingesting and reading originals: seal in the object store, then index and log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, bindparam, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from api.appender import Appender
from api.database import read_scope
from api.ids import new_id
from api.known import KnownNames
from api.problems import not_found
from api.sequencer import append_events
from api.sidecar import read_sidecar, seal_sidecar
from api.staging import StagedFile
from api.tables import Case, Evidence, Ingest, LogEvent, SharingCopy
from custody.events import CustodyEvent, Subject, decode_entry, encode_entry, ingested
from custody.media import detect_media_type
from custody.metadata.base import Metadata
from custody.metadata.extract import extract_metadata
from storage import ObjectStore


def original_key(sha256: str) -> str:
    """The content address of an original in the object store."""
    return f"originals/sha256/{sha256[:2]}/{sha256}"


@dataclass(frozen=True, slots=True)
class IngestRequest:
    case_id: str
    actor_id: str
    filename: str | None
    declared_media_type: str | None
    actor_pseudonym: str  # how the log names the actor


@dataclass(frozen=True, slots=True)
class View:
    """What a reader may see of an item: these cases, and (a field account) only its own."""

    cases: frozenset[str]
    actor_id: str | None = None  # only the ingests by this user
    pseudonym: str | None = None  # only the events by this actor


@dataclass(frozen=True, slots=True)
class IngestResult:
    sha256: str
    size: int
    media_type: str
    declared_media_type: str | None
    case_id: str
    index: int
    event_id: str
    received_at: datetime
    stored: bool  # False when the same bytes were already sealed (in any case)
    metadata: Metadata
    metadata_sha256: str


class EvidenceService:
    def __init__(
        self,
        *,
        engine: Engine,
        store: ObjectStore,
        retention: timedelta,
        appender: Appender,
    ) -> None:
        self._engine = engine
        self._store = store
        self._retention = retention
        self._appender = appender
        # Sealed sidecars are create-only and locked: one seen is known for good.
        self._sealed_sidecars = KnownNames()

    def ingest(self, staged: StagedFile, request: IngestRequest, *, now: datetime) -> IngestResult:
        """Seal `staged` under its content address, then index it and append its event.

        The object is durable before the event exists, so no entry ever names bytes the store
        does not hold; a crash in between leaves only an unreferenced sealed object.
        """
        sha256 = staged.digests["sha256"]
        key = original_key(sha256)
        stored = False
        # A large original already sealed is not sent again. A small one (in memory) costs
        # less to send than to ask about first: the create-only put is a no-op for it.
        if staged.data is not None or self._store.stat(key) is None:
            with staged.open() as source:
                put = self._store.put(
                    key, source, sha256=sha256, size=staged.size, retain_until=now + self._retention
                )
            stored = put.created
        media_type = detect_media_type(staged.head)
        # Never blocks ingest: extraction records parser failures instead of raising.
        with staged.open() as source:
            metadata = extract_metadata(source, media_type)
        sidecar = seal_sidecar(
            self._store, metadata, retain_until=now + self._retention, known=self._sealed_sidecars
        )
        extra = {k: v for k, v in staged.digests.items() if k != "sha256"}
        event_id = new_id("e")
        event = ingested(
            event_id=event_id,
            time=now,
            actor=request.actor_pseudonym,
            case=request.case_id,
            subject=Subject(sha256=sha256, size=staged.size, media_type=media_type, digests=extra),
            sidecar=sidecar,
        )

        evidence_row = {
            "sha256": sha256,
            "size": staged.size,
            "media_type": media_type,
            "digests_json": json.dumps(extra, sort_keys=True),
            "storage_key": key,
            "first_seen_at": now,
            "metadata_sha256": sidecar,
        }
        ingest_row = {
            "id": event_id,
            "case_id": request.case_id,
            "sha256": sha256,
            "actor_id": request.actor_id,
            "filename": request.filename,
            "declared_media_type": request.declared_media_type,
            "received_at": now,
            "metadata_sha256": sidecar,
        }

        pending = _PendingIngest(
            request.case_id,
            evidence_row,
            ingest_row,
            event,
            encode_entry(event),  # here, not in the group commit every request waits for
            now,
        )
        index = self._appender.submit(
            lambda session: _record_ingests(session, [pending])[0],
            bulk=_record_ingests,
            item=pending,
        )
        return IngestResult(
            sha256=sha256,
            size=staged.size,
            media_type=media_type,
            declared_media_type=request.declared_media_type,
            case_id=request.case_id,
            index=index,
            event_id=event_id,
            received_at=now,
            stored=stored,
            metadata=metadata,
            metadata_sha256=sidecar,
        )

    def close(self) -> None:
        """Finish the queued appends and stop the group-commit thread."""
        self._appender.stop()

    def describe(self, sha256: str, view: View) -> dict[str, Any]:
        """The record of an original with the ingests and custody events `view` may see."""
        with read_scope(self._engine) as session:
            evidence = session.get(Evidence, sha256)
            if evidence is None:
                raise not_found("evidence")
            ingests = session.exec(
                select(Ingest)
                .where(Ingest.sha256 == sha256, col(Ingest.case_id).in_(view.cases))
                .order_by(col(Ingest.event_index))
            ).all()
        visible = [i for i in ingests if view.actor_id is None or i.actor_id == view.actor_id]
        return {
            "sha256": evidence.sha256,
            "size": evidence.size,
            "media_type": evidence.media_type,
            "digests": {"sha256": evidence.sha256, **json.loads(evidence.digests_json)},
            # Not the record's own first_seen_at: that dates an ingest in any case, and would
            # tell a reader that another case held the bytes first.
            "first_seen_at": min((i.received_at for i in visible), default=None),
            "ingests": [
                {
                    "case_id": i.case_id,
                    "filename": i.filename,
                    "declared_media_type": i.declared_media_type,
                    "actor": i.actor_id,
                    "received_at": i.received_at,
                    "index": i.event_index,
                }
                for i in visible
            ],
            "events": [
                {"index": e.index, "type": e.type, "entry": decode_entry(e.entry)}
                for e in self.history(sha256, view)
            ],
        }

    def history(self, sha256: str, view: View) -> list[LogEvent]:
        """Every event about the original and its sharing copies (ingests, copies, reads,
        exports) in log order, within the cases `view` may see."""
        with read_scope(self._engine) as session:
            copies = session.exec(
                select(SharingCopy.sha256).where(SharingCopy.original_sha256 == sha256)
            ).all()
            events = session.exec(
                select(LogEvent)
                .where(
                    col(LogEvent.subject_sha256).in_([sha256, *copies]),
                    col(LogEvent.case_id).in_(view.cases),
                )
                .order_by(col(LogEvent.index))
            ).all()
        return [e for e in events if view.pseudonym is None or e.actor == view.pseudonym]

    def metadata(self, sha256: str) -> dict[str, Any]:
        """The sealed metadata sidecar of an original, as stored."""
        with read_scope(self._engine) as session:
            evidence = session.get(Evidence, sha256)
        if evidence is None or evidence.metadata_sha256 is None:
            raise not_found("evidence metadata")
        return {
            "sha256": evidence.metadata_sha256,
            **read_sidecar(self._store, evidence.metadata_sha256),
        }


@dataclass(frozen=True, slots=True)
class _PendingIngest:
    """An ingest sealed in the store, waiting for its rows and its event."""

    case_id: str
    evidence_row: dict[str, Any]
    ingest_row: dict[str, Any]
    event: CustodyEvent
    entry: bytes
    now: datetime


def _record_ingests(session: Session, ingests: list[_PendingIngest]) -> list[int]:
    """Index and log sealed ingests, in order; their event indices.

    This runs inside the group commit, which every waiting request queues behind: a
    statement per kind of row for all the ingests of a batch (on the session's connection,
    past the ORM), not a statement per row.
    """
    connection = session.connection()
    cases = {ingest.case_id for ingest in ingests}
    if len(connection.execute(_CASES_EXISTING, {"ids": list(cases)}).all()) != len(cases):
        raise not_found("case")  # the group commit then finds which one, running each alone
    postgres = connection.dialect.name == "postgresql"
    connection.execute(
        _INSERT_EVIDENCE_PG if postgres else _INSERT_EVIDENCE_SQLITE,
        [ingest.evidence_row for ingest in ingests],
    )
    indices = append_events(
        session,
        [(ingest.event, ingest.entry) for ingest in ingests],
        now=[ingest.now for ingest in ingests],
    )
    connection.execute(
        _INSERT_INGEST,
        [
            {**ingest.ingest_row, "event_index": index}
            for ingest, index in zip(ingests, indices, strict=True)
        ],
    )
    return indices


_CASES: Table = Case.__table__  # type: ignore[attr-defined]
_EVIDENCE: Table = Evidence.__table__  # type: ignore[attr-defined]
_CASES_EXISTING = select(_CASES.c.id).where(_CASES.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_EVIDENCE_PG = pg_insert(_EVIDENCE).on_conflict_do_nothing()
_INSERT_EVIDENCE_SQLITE = sqlite_insert(_EVIDENCE).on_conflict_do_nothing()
_INSERT_INGEST = insert(Ingest.__table__)  # type: ignore[attr-defined]
