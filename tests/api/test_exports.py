"""Export requests: who may export, items resolved within the case, and the build's state."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.access import AccessService
from api.appender import Appender
from api.auth import Principal, create_user
from api.database import build_engine, migrate, session_scope
from api.exports import BUILDING, FAILED, ExportRequest, ExportService
from api.problems import Problem
from api.tables import Case, Evidence, Ingest, SharingCopy, User

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
PHOTO, COPY, ELSEWHERE = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = build_engine(f"sqlite:///{tmp_path / 'exports.db'}")
    migrate(eng)
    with session_scope(eng) as session:
        session.add(User(id="u_op", name="operator", role="admin", created_at=NOW))
        session.flush()
        for case in ("c_here", "c_there"):
            session.add(Case(id=case, title=case, created_by="u_op", created_at=NOW))
    yield eng
    eng.dispose()


def principal(engine: Engine, role: str, cases: list[str]) -> Principal:
    made = create_user(engine, name=role, role=role, now=NOW, cases=cases)
    return Principal(made.user_id, role, made.pseudonym)


def seed(engine: Engine, lawyer: Principal) -> None:
    with session_scope(engine) as session:
        for sha, case, index, name in (
            (PHOTO, "c_here", 100, "site 4.jpg"),
            (ELSEWHERE, "c_there", 101, "x.bin"),
        ):
            session.add(
                Evidence(
                    sha256=sha,
                    size=10,
                    media_type="image/jpeg",
                    storage_key=f"o/{sha}",
                    first_seen_at=NOW,
                )
            )
            session.flush()
            session.add(
                Ingest(
                    id=f"e_{index}",
                    case_id=case,
                    sha256=sha,
                    actor_id=lawyer.user_id,
                    filename=name,
                    received_at=NOW,
                    event_index=index,
                )
            )
        session.add(
            SharingCopy(
                sha256=COPY,
                original_sha256=PHOTO,
                case_id="c_here",
                size=8,
                media_type="image/jpeg",
                profile="share",
                tool="jpeg/1",
                content_kind="jpeg-scans",
                content_sha256="d" * 64,
                storage_key=f"c/{COPY}",
                created_by=lawyer.user_id,
                created_at=NOW,
                event_index=102,
            )
        )


@pytest.fixture
def service(engine: Engine) -> Iterator[ExportService]:
    appender = Appender(engine)
    exports = ExportService(
        engine=engine, access=AccessService(engine=engine, appender=appender), stale_after=60
    )
    yield exports
    exports.close()
    appender.stop()


def test_items_resolve_within_the_case_in_exhibit_order(
    engine: Engine, service: ExportService
) -> None:
    lawyer = principal(engine, "lawyer", ["c_here"])
    seed(engine, lawyer)
    built: list[ExportRequest] = []
    done = threading.Event()

    def build(request: ExportRequest) -> None:
        built.append(request)
        done.set()

    job = service.request(
        lawyer,
        "c_here",
        items=[COPY, PHOTO.upper()],
        purpose=" For the court ",
        max_items=10,
        now=NOW,
        build=build,
    )
    assert done.wait(10)
    assert job.status == BUILDING
    (request,) = built
    assert request.purpose == "For the court"
    assert request.actor == lawyer.pseudonym
    copy, photo = request.items
    assert (copy.number, copy.kind, copy.original_sha256) == (1, "sharing-copy", PHOTO)
    assert copy.path == "data/001-site 4.shared.jpg"
    assert (photo.number, photo.kind, photo.storage_key) == (2, "original", f"o/{PHOTO}")
    assert photo.path == "data/002-site 4.jpg"


def test_who_may_export_and_what(engine: Engine, service: ExportService) -> None:
    lawyer = principal(engine, "lawyer", ["c_here"])
    seed(engine, lawyer)

    def build(request: ExportRequest) -> None:
        raise AssertionError("nothing may be built")

    def ask(who: Principal, items: list[str], case: str = "c_here") -> Problem:
        with pytest.raises(Problem) as caught:
            service.request(who, case, items=items, purpose="p", max_items=2, now=NOW, build=build)
        return caught.value

    assert ask(principal(engine, "field", ["c_here"]), [PHOTO]).status == 403
    assert ask(principal(engine, "lawyer", ["c_there"]), [PHOTO]).status == 404
    assert ask(principal(engine, "admin", []), [PHOTO]).status == 404  # members only
    unknown = ask(lawyer, [PHOTO, ELSEWHERE])
    assert (unknown.status, unknown.extra["missing"]) == (422, [ELSEWHERE])
    too_many = ask(lawyer, [PHOTO, COPY, "e" * 64])
    assert too_many.status == 422
    assert "1 to 2" in too_many.detail
    odd = ask(lawyer, ["not-a-hash"])
    assert odd.extra["malformed"] == ["not-a-hash"]


def test_failed_and_interrupted_builds_say_so(engine: Engine, service: ExportService) -> None:
    lawyer = principal(engine, "lawyer", ["c_here"])
    seed(engine, lawyer)
    done = threading.Event()

    def fail(request: ExportRequest) -> None:
        done.set()
        raise OSError("disk full")

    job = service.request(
        lawyer, "c_here", items=[PHOTO], purpose="p", max_items=5, now=NOW, build=fail
    )
    assert done.wait(10)
    for _ in range(100):
        seen = service.job(lawyer, job.id, now=NOW)
        if seen.status != BUILDING:
            break
        threading.Event().wait(0.05)
    assert (seen.status, seen.error) == (FAILED, "disk full")

    stuck = service.request(
        lawyer, "c_here", items=[PHOTO], purpose="p", max_items=5, now=NOW, build=lambda r: None
    )
    assert service.job(lawyer, stuck.id, now=NOW + timedelta(seconds=30)).status == BUILDING
    late = service.job(lawyer, stuck.id, now=NOW + timedelta(seconds=61))
    assert late.status == BUILDING  # the service resumes it (test_interrupted_builds_...)
    assert "interrupted" in (late.error or "")
    assert "builds it again" in (late.error or "")
    with pytest.raises(Problem) as hidden:
        service.job(principal(engine, "lawyer", ["c_there"]), stuck.id, now=NOW)
    assert hidden.value.status == 404


def test_interrupted_builds_are_resumed_once_by_whoever_claims_them(
    engine: Engine, service: ExportService
) -> None:
    lawyer = principal(engine, "lawyer", ["c_here"])
    seed(engine, lawyer)
    silent = service.request(
        lawyer, "c_here", items=[PHOTO], purpose="for the court", max_items=5, now=NOW,
        build=lambda r: None,
    )  # fmt: skip
    rebuilt: list[ExportRequest] = []
    finished = threading.Event()

    def build(request: ExportRequest) -> None:
        rebuilt.append(request)
        finished.set()

    assert service.resume_interrupted(build, now=NOW + timedelta(seconds=59)) == []  # not yet
    later = NOW + timedelta(seconds=61)
    assert service.resume_interrupted(build, now=later) == [silent.id]
    assert finished.wait(10)
    (request,) = rebuilt
    assert (request.export_id, request.case_id, request.purpose) == (
        silent.id, "c_here", "for the court",
    )  # fmt: skip
    assert request.created_at == NOW
    assert [i.sha256 for i in request.items] == [PHOTO]
    # The claim renewed its heartbeat: another process looking now finds nothing to resume.
    other = ExportService(engine=engine, access=service._access, stale_after=60)
    try:
        assert other.resume_interrupted(build, now=later + timedelta(seconds=1)) == []
    finally:
        other.close()


def test_a_build_running_here_is_not_resumed_here(engine: Engine, service: ExportService) -> None:
    lawyer = principal(engine, "lawyer", ["c_here"])
    seed(engine, lawyer)
    release, started = threading.Event(), threading.Event()

    def slow(request: ExportRequest) -> None:
        started.set()
        release.wait(10)

    job = service.request(
        lawyer, "c_here", items=[PHOTO], purpose="p", max_items=5, now=NOW, build=slow
    )
    assert started.wait(10)
    try:
        resumed = service.resume_interrupted(slow, now=NOW + timedelta(seconds=61))
        assert job.id not in resumed
    finally:
        release.set()
