"""Sharing copies: made from a sealed original, checked, sealed, and logged as `derived`."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select

from api.appender import Appender
from api.auth import Principal
from api.database import read_scope
from api.ids import new_id
from api.problems import not_found
from api.sequencer import append_event
from api.tables import Evidence, Ingest, SharingCopy
from custody.events import Derivation, Subject, derived
from custody.metadata.copies import PROFILE, PROFILE_VERSION, Copy, make_copy
from custody.metadata.extract import extract_metadata
from storage import ObjectStore

COPY_CHUNK = 1024 * 1024


def copy_key(sha256: str) -> str:
    return f"copies/sha256/{sha256[:2]}/{sha256}"


@dataclass(frozen=True, slots=True)
class CopyResult:
    copy: Copy
    original: str
    case_id: str
    media_type: str
    index: int
    created_at: datetime


class CopyService:
    def __init__(
        self,
        *,
        engine: Engine,
        store: ObjectStore,
        appender: Appender,
        retention: timedelta,
        staging: Path,
    ) -> None:
        self._engine = engine
        self._store = store
        self._appender = appender
        self._retention = retention
        self._staging = staging

    def make(
        self, original: str, *, actor: Principal, case_id: str | None, now: datetime
    ) -> CopyResult:
        """Strip, check (fail closed), seal and log a sharing copy of `original`."""
        evidence, case = self._original(original, case_id)
        self._staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._staging, prefix="copy-") as tmp:
            source, target = Path(tmp) / "original", Path(tmp) / "copy"
            self._fetch(evidence.storage_key, source)
            made = make_copy(
                source,
                evidence.media_type,
                target,
                original_metadata=extract_metadata(source, evidence.media_type),
                extract=extract_metadata,
            )
            with target.open("rb") as stream:
                self._store.put(
                    copy_key(made.sha256),
                    stream,
                    sha256=made.sha256,
                    size=made.size,
                    retain_until=now + self._retention,
                )
        index = self._appender.submit(
            lambda session: self._record(session, made, evidence, case, actor, now)
        )
        return CopyResult(made, original, case, made.media_type, index, now)

    def describe(self, row: SharingCopy) -> dict[str, Any]:
        """The record of a copy as made in one case (`AccessService.copy_case` finds it)."""
        return {
            "sha256": row.sha256,
            "size": row.size,
            "media_type": row.media_type,
            "original": row.original_sha256,
            "case_id": row.case_id,
            "profile": row.profile,
            "tool": row.tool,
            "removed": json.loads(row.removed_json),
            "content": {"kind": row.content_kind, "sha256": row.content_sha256},
            "created_at": row.created_at,
            "index": row.event_index,
        }

    def _original(self, sha256: str, case_id: str | None) -> tuple[Evidence, str]:
        with read_scope(self._engine) as session:
            evidence = session.get(Evidence, sha256)
            query = select(Ingest.case_id).where(Ingest.sha256 == sha256)
            if case_id is not None:
                query = query.where(Ingest.case_id == case_id)
            case = session.exec(query.order_by(col(Ingest.event_index))).first()
        if evidence is None or case is None:
            raise not_found("evidence")
        return evidence, case

    def _fetch(self, key: str, path: Path) -> None:
        """A seekable private copy of the original (some formats need to seek)."""
        with self._store.open(key) as stream, path.open("wb") as out:
            shutil.copyfileobj(stream, out, COPY_CHUNK)

    def _record(
        self,
        session: Session,
        made: Copy,
        evidence: Evidence,
        case: str,
        actor: Principal,
        now: datetime,
    ) -> int:
        event = derived(
            event_id=new_id("e"),
            time=now,
            actor=actor.pseudonym,
            case=case,
            subject=Subject(sha256=made.sha256, size=made.size, media_type=made.media_type),
            derivation=Derivation(
                original=evidence.sha256,
                profile=PROFILE_VERSION,
                tool=made.stripper,
                removed=made.report.removed,
                content_kind=made.report.content_kind,
                content_sha256=made.report.content_digest,
            ),
        )
        index = append_event(session, event, now=now)
        row = SharingCopy(
            sha256=made.sha256,
            original_sha256=evidence.sha256,
            case_id=case,
            size=made.size,
            media_type=made.media_type,
            profile=PROFILE,
            tool=made.stripper,
            removed_json=json.dumps(list(made.report.removed)),
            content_kind=made.report.content_kind,
            content_sha256=made.report.content_digest,
            storage_key=copy_key(made.sha256),
            created_by=actor.user_id,
            created_at=now,
            event_index=index,
        )
        # A row per entry (its index is the key): the same bytes made in another case, or
        # again in this one, are another row.
        session.execute(insert(SharingCopy).values(**row.model_dump()))
        return index
