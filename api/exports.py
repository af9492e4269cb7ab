"""Exhibit bundles: who may export what, the export's state, and downloading the sealed bag.

An export is built in the background (api/bundler.py): the bag waits for a checkpoint over
its own `exported` entries, so a request answers 202 at once and the bag is fetched when
ready. Only lawyers and admins who are members of the case may export or download.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from api.access import MAX_PURPOSE, AccessService
from api.auth import Principal
from api.database import read_scope, session_scope
from api.evidence import original_key
from api.ids import new_id
from api.problems import Problem, not_found, problem_type
from api.tables import Case, Evidence, ExportJob, Ingest, SharingCopy
from custody.bundle.layout import number_width, payload_name, shared_filename
from custody.bundle.model import ORIGINAL, SHARING_COPY
from custody.errors import BundleError
from custody.events import Subject
from custody.media import extension_for
from custody.purpose import PURPOSE_KEY_BYTES

log = logging.getLogger("custody.exports")
BUILDING, READY, FAILED = "building", "ready", "failed"
BAG_MEDIA_TYPE = "application/zip"


def bag_root(export_id: str) -> str:
    """The bag's directory inside the zip, and the zip's name without `.zip`."""
    return f"custody-export-{export_id}"


def export_key(export_id: str) -> str:
    return f"exports/{export_id}.zip"


@dataclass(frozen=True, slots=True)
class Item:
    """One exhibit to be: what the request named, resolved within the case."""

    number: int
    sha256: str
    kind: str  # ORIGINAL or SHARING_COPY
    storage_key: str
    size: int
    media_type: str
    filename: str | None  # the name it came in under (a copy: its original's, marked shared)
    original_sha256: str  # itself for an original
    path: str  # its payload path in the bag
    collected: int | None  # the index of the `ingested` entry of its original in the case

    def subject(self) -> Subject:
        return Subject(self.sha256, self.size, self.media_type)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    export_id: str
    case_id: str
    case_title: str
    actor: str  # pseudonym
    purpose: str
    purpose_key: str  # hex (custody.purpose): the `exported` entries commit to the purpose with it
    items: tuple[Item, ...]
    created_at: datetime


Build = Callable[[ExportRequest], None]


class ExportService:
    def __init__(
        self, *, engine: Engine, access: AccessService, stale_after: float, workers: int = 2
    ) -> None:
        self._engine = engine
        self._access = access
        self._stale_after = timedelta(seconds=stale_after)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="custody-export")
        self.stopping = threading.Event()
        self._building: set[str] = set()  # ids this process is building now
        self._lock = threading.Lock()

    def request(
        self,
        principal: Principal,
        case_id: str,
        *,
        items: list[str],
        purpose: str,
        max_items: int,
        now: datetime,
        build: Build,
    ) -> ExportJob:
        """Check the request, record the export as building, and start building it."""
        case = self._access.require_case(principal, case_id)
        self._access.require_reader(principal, "originals, so it may not export them")
        purpose = _check_purpose(purpose)
        hashes = _check_items(items, max_items)
        resolved = self._resolve(case_id, hashes)
        job = ExportJob(
            id=new_id("x"),
            case_id=case_id,
            created_by=principal.user_id,
            actor=principal.pseudonym,
            purpose=purpose,
            purpose_key=secrets.token_hex(PURPOSE_KEY_BYTES),
            items_json=json.dumps(hashes),
            status=BUILDING,
            created_at=now,
            updated_at=now,
        )
        with session_scope(self._engine) as session:
            session.add(job)
        request = ExportRequest(
            job.id,
            case_id,
            case.title,
            principal.pseudonym,
            purpose,
            job.purpose_key,
            resolved,
            now,
        )
        self._pool.submit(self._run, build, request)
        return job

    def _run(self, build: Build, request: ExportRequest) -> None:
        with self._lock:
            if request.export_id in self._building:
                return  # already being built here (a slow step looked like silence)
            self._building.add(request.export_id)
        try:
            build(request)
        except Exception as exc:
            log.exception("export %s failed", request.export_id)
            self.update(request.export_id, status=FAILED, error=_reason(exc), now=None)
        finally:
            with self._lock:
                self._building.discard(request.export_id)

    def update(self, export_id: str, *, now: datetime | None, **values: object) -> None:
        """Record progress (a heartbeat) or the outcome of a build."""
        with session_scope(self._engine) as session:
            job = session.get(ExportJob, export_id)
            if job is None:
                return
            for name, value in values.items():
                setattr(job, name, value)
            job.updated_at = now or job.updated_at
            session.add(job)

    def close(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def resume_interrupted(self, build: Build, *, now: datetime) -> list[str]:
        """Build again every export whose build went silent (the process building it died or
        was stopped); return their ids. Each is claimed in one conditional update, so of
        several processes only one resumes it. The bundler picks up where the build stopped:
        `exported` entries already in the log are not appended again, and a bag already
        sealed is only marked ready."""
        with read_scope(self._engine) as session:
            stale = session.exec(
                select(ExportJob).where(
                    ExportJob.status == BUILDING,
                    col(ExportJob.updated_at) < now - self._stale_after,
                )
            ).all()
        resumed = []
        for job in stale:
            with self._lock:
                here = job.id in self._building
            if here or self.stopping.is_set() or not self._claim(job, now):
                continue
            try:
                request = self._request_of(job)
            except Exception as exc:  # its evidence is no longer resolvable: say why
                self.update(job.id, status=FAILED, error=_reason(exc), now=now)
                continue
            log.warning("export %s was interrupted; building it again", job.id)
            self._pool.submit(self._run, build, request)
            resumed.append(job.id)
        return resumed

    def _claim(self, job: ExportJob, now: datetime) -> bool:
        with session_scope(self._engine) as session:
            result = session.execute(
                update(ExportJob)
                .where(
                    col(ExportJob.id) == job.id,
                    col(ExportJob.status) == BUILDING,
                    col(ExportJob.updated_at) == job.updated_at,
                )
                .values(updated_at=now)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _request_of(self, job: ExportJob) -> ExportRequest:
        with read_scope(self._engine) as session:
            case = session.get(Case, job.case_id)
        if case is None:
            raise BundleError(f"case {job.case_id} no longer exists")
        items = self._resolve(job.case_id, json.loads(job.items_json))
        return ExportRequest(
            job.id,
            job.case_id,
            case.title,
            job.actor,
            job.purpose,
            job.purpose_key,
            items,
            job.created_at,
        )

    def job(self, principal: Principal, export_id: str, *, now: datetime) -> ExportJob:
        """The export if the principal may see it (404 otherwise; 403 for a member who may
        not read originals), with a build silent for too long reported as interrupted."""
        with read_scope(self._engine) as session:
            job = session.get(ExportJob, export_id)
        if job is None or job.case_id not in self._access.visible_cases(principal):
            raise not_found("export")
        self._access.require_reader(principal, "exhibit bundles")
        if job.status == BUILDING and now - job.updated_at > self._stale_after:
            job.error = "the build was interrupted (a restart?); the service builds it again"
        return job

    def case_jobs(self, principal: Principal, case_id: str) -> list[ExportJob]:
        self._access.require_case(principal, case_id)
        self._access.require_reader(principal, "exhibit bundles")
        with read_scope(self._engine) as session:
            return list(
                session.exec(
                    select(ExportJob)
                    .where(ExportJob.case_id == case_id)
                    .order_by(col(ExportJob.created_at))
                ).all()
            )

    def _resolve(self, case_id: str, hashes: list[str]) -> tuple[Item, ...]:
        width = number_width(len(hashes))
        items, missing = [], []
        with read_scope(self._engine) as session:
            for number, sha256 in enumerate(hashes, start=1):
                item = _original(session, case_id, sha256, number, width) or _copy(
                    session, case_id, sha256, number, width
                )
                if item is None:
                    missing.append(sha256)
                else:
                    items.append(item)
        if missing:
            raise Problem(
                422,
                "Items not in this case",
                f"{len(missing)} of the items are neither an original nor a sharing copy in "
                "this case; list only hashes of this case's evidence and copies.",
                type_=problem_type("export-items-unknown"),
                missing=missing,
            )
        return tuple(items)


def _first_ingest(session: Session, sha256: str, case_id: str) -> Ingest | None:
    """The earliest ingest of these bytes into the case: who collected them, when, as what."""
    return session.exec(
        select(Ingest)
        .where(Ingest.sha256 == sha256, Ingest.case_id == case_id)
        .order_by(col(Ingest.event_index))
    ).first()


def _original(session: Session, case_id: str, sha256: str, number: int, width: int) -> Item | None:
    ingest = _first_ingest(session, sha256, case_id)
    evidence = session.get(Evidence, sha256) if ingest is not None else None
    if ingest is None or evidence is None:
        return None
    return Item(
        number=number,
        sha256=sha256,
        kind=ORIGINAL,
        storage_key=evidence.storage_key or original_key(sha256),
        size=evidence.size,
        media_type=evidence.media_type,
        filename=ingest.filename,
        original_sha256=sha256,
        path=payload_name(number, width, ingest.filename, extension_for(evidence.media_type)),
        collected=ingest.event_index,
    )


def _copy(session: Session, case_id: str, sha256: str, number: int, width: int) -> Item | None:
    copy = session.exec(
        select(SharingCopy)
        .where(SharingCopy.sha256 == sha256, SharingCopy.case_id == case_id)
        .order_by(col(SharingCopy.event_index))
    ).first()
    if copy is None:
        return None
    ingest = _first_ingest(session, copy.original_sha256, case_id)
    original = session.get(Evidence, copy.original_sha256)
    # A rendition (a HEIC photo's PNG) is named for what it is, not for its original.
    rendition = None
    if original is not None and original.media_type != copy.media_type:
        rendition = extension_for(copy.media_type)
    filename = shared_filename(ingest.filename if ingest is not None else None, rendition)
    return Item(
        number=number,
        sha256=sha256,
        kind=SHARING_COPY,
        storage_key=copy.storage_key,
        size=copy.size,
        media_type=copy.media_type,
        filename=filename,
        original_sha256=copy.original_sha256,
        path=payload_name(number, width, filename, extension_for(copy.media_type)),
        collected=ingest.event_index if ingest is not None else None,
    )


def _check_purpose(purpose: str) -> str:
    purpose = purpose.strip()
    if not purpose or len(purpose) > MAX_PURPOSE:
        raise Problem(
            422,
            "State the purpose",
            f"The purpose is empty or too long: say in 1 to {MAX_PURPOSE} characters what the "
            "bundle is for and for whom "
            "(e.g. 'Submission to the court in case 123/26'); it is kept with the export.",
            type_=problem_type("export-purpose"),
        )
    return purpose


def _check_items(items: list[str], max_items: int) -> list[str]:
    hashes = [item.strip().lower() for item in items]
    problems = []
    if not 1 <= len(hashes) <= max_items:
        problems.append(f"list 1 to {max_items} items")
    malformed = [h for h in hashes if len(h) != 64 or set(h) - set("0123456789abcdef")]
    if malformed:
        problems.append(f"{len(malformed)} items are not SHA-256 hex digests")
    repeated = sorted(h for h, n in Counter(hashes).items() if n > 1)
    if repeated:
        problems.append(f"{len(repeated)} items are listed more than once")
    if problems:
        raise Problem(
            422,
            "Malformed export",
            "; ".join(problems).capitalize() + ".",
            type_=problem_type("export-items"),
            malformed=malformed[:100],
            repeated=repeated[:100],
        )
    return hashes


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:2000]
