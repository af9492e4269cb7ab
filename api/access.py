"""Who may see what: roles, case membership (need to know), and every read in the log.

Roles: `admin` manages users and cases; `lawyer` works on the cases they are members of;
`field` uploads to their cases and sees only their own uploads (never originals of anyone,
not even their own, to download); `auditor` reads the log and its proofs, never evidence.
A user who may not see a case or an item gets 404, exactly as if it did not exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, Table, bindparam
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from api.appender import Appender
from api.auth import Principal
from api.database import read_once, read_scope
from api.evidence import View
from api.ids import new_id
from api.problems import Problem, not_found, problem_type
from api.sequencer import append_event
from api.tables import AccessPurpose, Case, CaseMember, Evidence, Ingest, LogEvent, SharingCopy
from custody.events import Access, Subject, accessed, encode_entry
from custody.purpose import PURPOSE_KEY_BYTES, commit_purpose

ADMIN, LAWYER, FIELD, AUDITOR = "admin", "lawyer", "field", "auditor"
READERS = frozenset({ADMIN, LAWYER})  # may read originals, copies and metadata of their cases
MAX_PURPOSE = 1000
_IngestRow = Row[Any, Any, Any, Any, Any, Any]  # a row of _READABLE


def forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, type_=problem_type("forbidden"))


def require_role(principal: Principal, *roles: str) -> None:
    """A 403 naming the roles that may, for actions that reveal nothing about a case."""
    if principal.role not in roles:
        raise forbidden(f"This needs the role {' or '.join(roles)}; yours is {principal.role}.")


class AccessService:
    """Membership checks and the custody events of access and administration."""

    def __init__(self, *, engine: Engine, appender: Appender) -> None:
        self._engine = engine
        self._appender = appender

    # --- who may see what -------------------------------------------------------------

    def member_cases(self, session: Session, user_id: str) -> set[str]:
        rows = session.exec(select(CaseMember.case_id).where(CaseMember.user_id == user_id))
        return set(rows.all())

    def require_case(self, principal: Principal, case_id: str, *, manage: bool = False) -> Case:
        """The case, if the principal is a member (or, with `manage`, an admin); else 404."""
        with read_scope(self._engine) as session:
            case = session.get(Case, case_id)
            member = case is not None and (
                session.get(CaseMember, (case_id, principal.user_id)) is not None
            )
        if case is None or not (member or (manage and principal.role == ADMIN)):
            raise not_found("case")
        return case

    def require_uploader(
        self, principal: Principal, case_id: str, *, member: bool | None = None
    ) -> None:
        """Uploads go to members with a role that collects evidence. `member`: whether the
        principal is a member, if already known (`authenticate_member`); else one query."""
        if member is None:
            with read_once(self._engine) as connection:
                params = {"case": case_id, "user": principal.user_id}
                member = connection.execute(_MEMBER, params).first() is not None
        if not member:
            raise not_found("case")
        if principal.role not in (ADMIN, LAWYER, FIELD):
            raise forbidden("Auditors read the log; they cannot add evidence.")

    def evidence_cases(self, principal: Principal, sha256: str) -> list[str]:
        """The cases holding `sha256` that the principal may see it in (oldest first); a
        field account sees only what it ingested itself. 404 if none."""
        return list(dict.fromkeys(row.case_id for row in self._readable(principal, sha256)))

    def could_read(self, principal: Principal, sha256: str, *, besides: str) -> bool:
        """Whether the principal may read `sha256` through an ingest other than `besides`
        (the event id of the upload being answered)."""
        return any(row.id != besides for row in self._ingests_readable(principal, sha256))

    def _readable(self, principal: Principal, sha256: str) -> list[_IngestRow]:
        """The principal's cases' ingests of `sha256` with the original's record, in one
        query (every logged read starts here); 404 if none."""
        rows = self._ingests_readable(principal, sha256)
        if not rows:
            raise not_found("evidence")
        return rows

    def _ingests_readable(self, principal: Principal, sha256: str) -> list[_IngestRow]:
        with read_once(self._engine) as connection:
            params = {"sha": sha256, "user": principal.user_id}
            rows = list(connection.execute(_READABLE, params).all())
        if principal.role == FIELD:
            rows = [row for row in rows if row.actor_id == principal.user_id]
        return rows

    def readable_original(self, principal: Principal, sha256: str) -> tuple[View, str, Subject]:
        """What the principal may see of original `sha256`, its storage key, and the subject
        an event about it names; 404 if nothing."""
        rows = self._readable(principal, sha256)
        cases = frozenset(row.case_id for row in rows)
        first = rows[0]
        subject = Subject(sha256, first.size, first.media_type)
        if principal.role == FIELD:
            return View(cases, principal.user_id, principal.pseudonym), first.storage_key, subject
        return View(cases), first.storage_key, subject

    def view(self, principal: Principal, sha256: str, *, auditors: bool = False) -> View:
        """What `principal` may see of original `sha256` (404 if nothing); with `auditors`,
        an auditor or admin sees the item's events in every case."""
        if auditors and principal.role in (ADMIN, AUDITOR):
            with read_scope(self._engine) as session:
                cases = session.exec(select(Ingest.case_id).where(Ingest.sha256 == sha256)).all()
            if not cases:
                raise not_found("evidence")
            return View(frozenset(cases))
        return self.readable_original(principal, sha256)[0]

    def copy_case(self, principal: Principal, sha256: str) -> tuple[str, SharingCopy]:
        """The copy `sha256` as made in a case of the principal's (its first `derived` entry
        there), and that case; 404 if none. The same bytes made in another case are that
        case's copy: they neither grant nor refuse access here, nor take its reads."""
        with read_scope(self._engine) as session:
            copy = session.exec(
                select(SharingCopy)
                .join(CaseMember, col(CaseMember.case_id) == col(SharingCopy.case_id))
                .where(SharingCopy.sha256 == sha256, CaseMember.user_id == principal.user_id)
                .order_by(col(SharingCopy.event_index))
            ).first()
        if copy is None:
            raise not_found("copy")
        return copy.case_id, copy

    def require_reader(self, principal: Principal, what: str) -> None:
        if principal.role not in READERS:
            raise forbidden(f"Your role ({principal.role}) may not read {what}.")

    def visible_cases(self, principal: Principal) -> set[str]:
        with read_scope(self._engine) as session:
            return self.member_cases(session, principal.user_id)

    def may_read_entry(self, principal: Principal, event: LogEvent) -> bool:
        """Entries are for auditors, and for members of the case an entry is about (a field
        account: only its own entries)."""
        if principal.role in (ADMIN, AUDITOR):
            return True
        if event.case_id is None or event.case_id not in self.visible_cases(principal):
            return False
        return principal.role != FIELD or event.actor == principal.pseudonym

    # --- the custody events of access and administration ------------------------------

    def record_access(
        self,
        principal: Principal,
        *,
        case_id: str,
        subject: Subject,
        kind: str,
        purpose: str | None,
        now: datetime,
    ) -> int:
        """Append the `accessed` event (and keep the purpose's text); return its index.
        Called before any byte is sent: a read that is not logged does not happen."""
        if purpose is not None and len(purpose) > MAX_PURPOSE:
            raise Problem(
                400,
                "Purpose too long",
                f"State the purpose in at most {MAX_PURPOSE} characters.",
                type_=problem_type("purpose-too-long"),
            )
        key = secrets.token_bytes(PURPOSE_KEY_BYTES) if purpose else None
        commitment = commit_purpose(purpose, key) if purpose and key else None
        event = accessed(
            event_id=new_id("e"),
            time=now,
            actor=principal.pseudonym,
            case=case_id,
            subject=subject,
            access=Access(kind, commitment),
        )

        entry = encode_entry(event)

        def run(session: Session) -> int:
            index = append_event(session, event, now=now, entry=entry)
            if purpose and key:
                session.add(
                    AccessPurpose(event_id=event.id, purpose=purpose, purpose_key=key.hex())
                )
            return index

        return self._appender.submit(run)

    def purposes(self, event_ids: Iterable[str]) -> dict[str, StatedPurpose]:
        """The stated purposes of these reads, with the keys that open their commitments."""
        ids = list(event_ids)
        if not ids:
            return {}
        with read_scope(self._engine) as session:
            rows = session.exec(
                select(
                    AccessPurpose.event_id, AccessPurpose.purpose, AccessPurpose.purpose_key
                ).where(col(AccessPurpose.event_id).in_(ids))
            ).all()
        return {event_id: StatedPurpose(text, key) for event_id, text, key in rows}


@dataclass(frozen=True, slots=True)
class StatedPurpose:
    text: str
    key: str | None  # hex; None for a read logged with the plain SHA-256 of the text


_INGESTS: Table = Ingest.__table__  # type: ignore[attr-defined]
_EVIDENCE: Table = Evidence.__table__  # type: ignore[attr-defined]
_MEMBERS: Table = CaseMember.__table__  # type: ignore[attr-defined]
_READABLE = (
    sql_select(
        _INGESTS.c.id,
        _INGESTS.c.case_id,
        _INGESTS.c.actor_id,
        _EVIDENCE.c.storage_key,
        _EVIDENCE.c.size,
        _EVIDENCE.c.media_type,
    )
    .join(_EVIDENCE, _EVIDENCE.c.sha256 == _INGESTS.c.sha256)
    .join(
        _MEMBERS,
        (_MEMBERS.c.case_id == _INGESTS.c.case_id) & (_MEMBERS.c.user_id == bindparam("user")),
    )
    .where(_INGESTS.c.sha256 == bindparam("sha"))
    .order_by(_INGESTS.c.event_index)
)
_MEMBER = sql_select(_MEMBERS.c.case_id).where(
    _MEMBERS.c.case_id == bindparam("case"), _MEMBERS.c.user_id == bindparam("user")
)
