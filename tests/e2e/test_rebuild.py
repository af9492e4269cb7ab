"""`custody admin rebuild-index`: the database rebuilt from the log alone equals the original."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from api.database import build_engine, session_scope
from api.tables import Evidence, LogEvent, LogState
from custody.checkpoint import open_checkpoint
from custody.note import parse_vkey
from custody.tiles import decode_bundle, encode_bundle
from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, custody_cli, running_service, throwaway_database
from tests.e2e.test_ingest import new_case

EVENT_COLUMNS = (
    "index", "event_id", "type", "subject_sha256", "case_id", "entry", "created_at", "actor",
)  # fmt: skip
EVIDENCE_COLUMNS = (
    "sha256", "size", "media_type", "digests_json", "storage_key", "first_seen_at",
    "metadata_sha256",
)  # fmt: skip


def database_url(env: dict[str, str]) -> str:
    if "CUSTODY_DATABASE_URL" in env:
        return env["CUSTODY_DATABASE_URL"]
    return f"sqlite:///{(Path(env['CUSTODY_DATA_DIR']) / 'custody.db').resolve()}"


@contextmanager
def fresh_database(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """An empty database of the deployment's kind, for the rebuild to fill."""
    if "CUSTODY_DATABASE_URL" in env:
        with throwaway_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'rebuilt.db'}"


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = build_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a rebuild must reproduce, in a stable order."""
    with engine_for(url) as engine, session_scope(engine) as session:
        events = session.exec(select(LogEvent).order_by(col(LogEvent.index))).all()
        evidence = session.exec(select(Evidence).order_by(col(Evidence.sha256))).all()
        state = session.get(LogState, 1)
        assert state is not None
        return {
            "log_events": [tuple(getattr(e, c) for c in EVENT_COLUMNS) for e in events],
            "evidence": [tuple(getattr(e, c) for c in EVIDENCE_COLUMNS) for e in evidence],
            "log_state": [(state.size, state.root)],
        }


def ingest_and_integrate(service: Service) -> tuple[int, int]:
    """Ingest a few files, the same bytes twice into two cases; wait until all are published.
    Return the number of events (the cases' and the user's administrative events too) and
    of distinct originals."""
    files = [os.urandom(300 + n) for n in range(4)]
    with service.client() as client:
        first, second = new_case(client, "Site A"), new_case(client, "Site B")
        uploads = [(first, data) for data in files] + [(second, files[1])]
        last = 0
        for case, data in uploads:
            response = client.put(f"/v1/cases/{case}/evidence", content=data)
            assert response.status_code in (201, 202), response.text
            last = max(last, int(response.json()["index"]))
        verifier = parse_vkey(client.get("/v1/log/vkey").text.strip())
        deadline = time.monotonic() + 60
        while open_checkpoint(client.get("/v1/log/checkpoint").content, verifier).size <= last:
            assert time.monotonic() < deadline, "the log did not integrate every ingest"
            time.sleep(0.1)
    return last + 1, len(files)


def test_the_rebuilt_index_equals_the_original(service: Service, tmp_path: Path) -> None:
    events, originals = ingest_and_integrate(service)
    with fresh_database(service.env, tmp_path) as target:
        result = custody_cli("admin", "rebuild-index", "--into", target, env=service.env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Rebuilt {events} events and {originals} originals" in result.stdout
        original = rows(database_url(service.env))
        rebuilt = rows(target)
        assert len(original["log_events"]) == events
        assert len(original["evidence"]) == originals
        # Every original's sealed metadata sidecar is named by its first `ingested` entry.
        assert all(row[-1] for row in original["evidence"])
        assert rebuilt == original

        # A second rebuild into the now filled database is refused and changes nothing.
        again = custody_cli("admin", "rebuild-index", "--into", target, env=service.env)
        assert again.returncode == 1, again.stdout + again.stderr
        assert "already holds log_events rows: rebuild into an empty one" in again.stderr
        assert "Traceback" not in again.stderr
        assert rows(target) == rebuilt


def test_rebuilding_into_the_live_database_is_refused(service: Service) -> None:
    ingest_and_integrate(service)
    before = rows(database_url(service.env))
    into_itself = custody_cli(
        "admin", "rebuild-index", "--into", database_url(service.env), env=service.env
    )
    assert into_itself.returncode == 1, into_itself.stdout + into_itself.stderr
    assert "rebuild into an empty one" in into_itself.stderr
    assert rows(database_url(service.env)) == before


def test_a_bundle_that_does_not_hash_to_the_signed_root_is_not_rebuilt(tmp_path: Path) -> None:
    """The rebuild trusts the store only as far as the signed checkpoint vouches for it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = base_env(data_dir)
    with running_service(env, data_dir) as service:
        events, _ = ingest_and_integrate(service)
    bundle = data_dir / "objects" / f"log/tile/entries/000.p/{events}"
    entries = decode_bundle(bundle.read_bytes())
    assert b'"type":"ingested"' in entries[-1]
    entries[-1] = entries[-1].replace(b'"type":"ingested"', b'"type":"annotated"')
    bundle.chmod(bundle.stat().st_mode | stat.S_IWUSR)
    bundle.write_bytes(encode_bundle(entries))
    target = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    result = custody_cli("admin", "rebuild-index", "--into", target, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "do not hash to the root signed" in result.stderr
    with engine_for(target) as engine, session_scope(engine) as session:
        assert session.exec(select(LogEvent)).all() == []  # rolled back, not half rebuilt
        assert session.exec(select(Evidence)).all() == []
    # And check-index refuses to compare against a store its signature does not vouch for.
    checked = custody_cli("admin", "check-index", env=env)
    assert checked.returncode == 1
    assert "do not hash to the root signed" in checked.stderr
