"""`custody audit` against a real log: every tampering with the store is named; the database is
not trusted (an edited row leaves the audit passing, `check-index` names it, the API serves
the store's bytes)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custody.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from custody.note import Verifier, generate_signer, parse_vkey
from custody.tiles import decode_bundle
from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, custody_cli, running_service
from tests.e2e.test_copies import GPS_PHOTO
from tests.e2e.test_ingest import new_case

ENTRIES = 300  # one full tile (tile/0/000) and a partial one (tile/0/001.p/44) at level 0
# Logged before the ingests: the e2e user's token-created, then case-created and member-added.
ADMIN_EVENTS = 3
FILES = ENTRIES - ADMIN_EVENTS
FULL_TILE, PARTIAL_TILE = "log/tile/0/000", f"log/tile/0/001.p/{ENTRIES - 256}"
FULL_BUNDLE, PARTIAL_BUNDLE = "log/tile/entries/000", f"log/tile/entries/001.p/{ENTRIES - 256}"


@dataclass(frozen=True)
class PublishedLog:
    """A stopped service's data directory whose log holds FILES ingests, all integrated."""

    data_dir: Path
    env: dict[str, str]
    token: str
    vkey: str
    files: list[bytes]

    @property
    def verifier(self) -> Verifier:
        return parse_vkey(self.vkey)

    def original(self, n: int) -> str:
        sha256 = hashlib.sha256(self.files[n]).hexdigest()
        return f"originals/sha256/{sha256[:2]}/{sha256}"


def wait_for_size(service: Service, verifier: Verifier, size: int) -> None:
    with service.client() as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            checkpoint = open_checkpoint(client.get("/v1/log/checkpoint").content, verifier)
            if checkpoint.size >= size:
                assert checkpoint.size == size
                return
            time.sleep(0.1)
    pytest.fail(f"the log did not reach size {size}")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> PublishedLog:
    data_dir = tmp_path_factory.mktemp("audit") / "data"
    data_dir.mkdir()
    # Answer each ingest at once rather than waiting for its receipt: one wait at the end.
    env = {**base_env(data_dir), "CUSTODY_RECEIPT_WAIT_SECONDS": "0"}
    files = [f"evidence file {n}\n".encode() for n in range(FILES)]
    with running_service(env, data_dir) as service, service.client() as client:
        case = new_case(client)
        vkey = client.get("/v1/log/vkey").text.strip()

        def ingest(data: bytes) -> None:
            with service.client() as own:
                response = own.put(f"/v1/cases/{case}/evidence", content=data)
                assert response.status_code in (201, 202), response.text

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(ingest, files))
        wait_for_size(service, parse_vkey(vkey), ENTRIES)
        token = service.token
    return PublishedLog(data_dir, env, token, vkey, files)


def audit(log: PublishedLog, objects: Path, state: Path) -> tuple[int, dict[str, Any]]:
    result = custody_cli("audit", "--json", "--vkey", log.vkey, "--state", str(state), str(objects))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def objects(published: PublishedLog, tmp_path: Path) -> Path:
    """A writable copy of the log's object store for one test to tamper with."""
    copy = tmp_path / "objects"
    shutil.copytree(published.data_dir / "objects", copy)
    return copy


def archived_sizes(objects: Path) -> list[int]:
    """The sizes of the archived checkpoints (beside them: their RFC 3161 replies)."""
    return [int(p.name) for p in (objects / "log/checkpoints").iterdir() if p.name.isdigit()]


def writable(path: Path) -> Path:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)  # the store makes sealed objects 0444
    return path


def flip_byte(path: Path, at: int = 10) -> None:
    data = bytearray(writable(path).read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def change_sha256_digit(path: Path, index: int) -> None:
    """Change one hex digit of entry `index`'s subject: the entry stays canonical JSON."""
    data = path.read_bytes()
    entries = decode_bundle(data)
    offset = sum(2 + len(e) for e in entries[: index % 256]) + 2
    at = offset + entries[index % 256].index(b'"sha256":"') + len(b'"sha256":"')
    flip = bytearray(data)
    flip[at] = ord("0") if flip[at] != ord("0") else ord("1")
    writable(path).write_bytes(bytes(flip))


def resign_with_another_key(path: Path, verifier: Verifier) -> None:
    checkpoint = open_checkpoint(path.read_bytes(), verifier)
    impostor = generate_signer(verifier.name)
    resigned = sign_checkpoint(
        Checkpoint(verifier.name, checkpoint.size, checkpoint.root), impostor
    )
    writable(path).write_bytes(resigned)


def failures_at(report: dict[str, Any], where: str) -> list[dict[str, str]]:
    found = [f for f in report["failures"] if f["where"] == where]
    assert found, f"no failure names {where!r}: {report['failures']}"
    return found


# Each scenario: what to do to the store copy, and the `where` of the failure it must give.
Tamper = Callable[[Path, PublishedLog], str]


def full_tile_byte(objects: Path, _: PublishedLog) -> str:
    flip_byte(objects / FULL_TILE, 100)
    return FULL_TILE.removeprefix("log/")


def partial_tile_byte(objects: Path, _: PublishedLog) -> str:
    flip_byte(objects / PARTIAL_TILE, 100)
    return PARTIAL_TILE.removeprefix("log/")


def bundle_byte(objects: Path, _: PublishedLog) -> str:
    change_sha256_digit(objects / FULL_BUNDLE, 5)
    return "entry 5"


def partial_bundle_byte(objects: Path, _: PublishedLog) -> str:
    change_sha256_digit(objects / PARTIAL_BUNDLE, 290)
    return "entry 290"


def original_byte(objects: Path, log: PublishedLog) -> str:
    flip_byte(objects / log.original(7), 0)
    return f"original {log.original(7).rsplit('/', 1)[1]}"


def deleted(key: str) -> Tamper:
    def tamper(objects: Path, log: PublishedLog) -> str:
        (objects / key).unlink()
        return key.removeprefix("log/")

    tamper.__name__ = f"deleted {key}"
    return tamper


def deleted_original(objects: Path, log: PublishedLog) -> str:
    (objects / log.original(42)).unlink()
    return f"original {log.original(42).rsplit('/', 1)[1]}"


def sealed_sidecar(objects: Path) -> Path:
    """The one metadata sidecar of the log's text files (they share their empty metadata)."""
    (sidecar,) = (p for p in (objects / "metadata/sha256").rglob("*") if p.is_file())
    return sidecar


def sidecar_byte(objects: Path, _: PublishedLog) -> str:
    sidecar = sealed_sidecar(objects)
    flip_byte(sidecar, 5)
    return f"metadata sidecar {sidecar.name}"


def deleted_sidecar(objects: Path, _: PublishedLog) -> str:
    sidecar = sealed_sidecar(objects)
    sidecar.unlink()
    return f"metadata sidecar {sidecar.name}"


def deleted_latest_archive(objects: Path, log: PublishedLog) -> str:
    (objects / f"log/checkpoints/{ENTRIES}").unlink()
    return f"checkpoints/{ENTRIES}"


def checkpoint_another_key(objects: Path, log: PublishedLog) -> str:
    resign_with_another_key(objects / "log/checkpoint", log.verifier)
    return "checkpoint"


def archive_another_key(objects: Path, log: PublishedLog) -> str:
    resign_with_another_key(objects / "log/checkpoints/0", log.verifier)
    return "checkpoints/0"


TAMPERS = [
    full_tile_byte,
    partial_tile_byte,
    bundle_byte,
    partial_bundle_byte,
    original_byte,
    deleted(FULL_TILE),
    deleted(PARTIAL_TILE),
    deleted(FULL_BUNDLE),
    deleted(PARTIAL_BUNDLE),
    deleted("log/checkpoint"),
    deleted_original,
    sidecar_byte,
    deleted_sidecar,
    deleted_latest_archive,
    checkpoint_another_key,
    archive_another_key,
]


def test_the_clean_copy_passes_and_saves_the_state(
    published: PublishedLog, objects: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    code, report = audit(published, objects, state)
    assert code == 0, report["failures"]
    assert report["ok"] is True
    assert report["failures"] == []
    assert (report["size"], report["entries"], report["originals"]) == (ENTRIES, ENTRIES, FILES)
    assert (report["sidecars"], report["copies"], report["unchecked"]) == (1, 0, [])
    assert report["tiles"] == 3  # tile/0/000, tile/0/001.p/44, tile/1/000.p/1
    assert report["checkpoints"] == len(archived_sizes(objects))
    # Every archived checkpoint carries a valid RFC 3161 token of the built-in TSA.
    assert report["timestamps"]["valid"] == report["checkpoints"]
    assert report["timestamps"]["checkpoints_missing"] == []
    assert json.loads(state.read_text()) == {"size": ENTRIES, "root": report["root"]}


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t.__name__)
def test_a_tampered_store_fails_and_names_the_object(
    published: PublishedLog, objects: Path, tmp_path: Path, tamper: Tamper
) -> None:
    where = tamper(objects, published)
    state = tmp_path / "state.json"
    code, report = audit(published, objects, state)
    assert code == 1
    assert report["ok"] is False
    failures_at(report, where)
    assert not state.exists()  # a failed audit must not become what the auditor remembers


def test_a_changed_tile_names_expected_and_found(
    published: PublishedLog, objects: Path, tmp_path: Path
) -> None:
    where = full_tile_byte(objects, published)
    code, report = audit(published, objects, tmp_path / "state.json")
    assert code == 1
    assert [f["where"] for f in report["failures"]] == [where]
    failure = report["failures"][0]
    assert failure["expected"].startswith("8192 bytes, sha256 ")
    assert failure["found"].startswith("8192 bytes, sha256 ")
    assert failure["expected"] != failure["found"]


def test_a_changed_original_names_both_digests(
    published: PublishedLog, objects: Path, tmp_path: Path
) -> None:
    where = original_byte(objects, published)
    code, report = audit(published, objects, tmp_path / "state.json")
    assert code == 1
    failure = failures_at(report, where)[0]
    changed = (objects / published.original(7)).read_bytes()
    assert where.split()[1] in failure["expected"]
    assert hashlib.sha256(changed).hexdigest() in failure["found"]


def test_a_checkpoint_rolled_back_after_an_audit_is_named(
    published: PublishedLog, objects: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    assert audit(published, objects, state)[0] == 0
    remembered = state.read_text()
    older = max(size for size in archived_sizes(objects) if size < ENTRIES)
    checkpoint = writable(objects / "log/checkpoint")
    shutil.copyfile(objects / f"log/checkpoints/{older}", checkpoint)
    code, report = audit(published, objects, state)
    assert code == 1
    rolled = failures_at(report, "checkpoint")[0]
    assert "rolled back" in rolled["problem"]
    assert (rolled["expected"], rolled["found"]) == (f"size >= {ENTRIES}", f"size {older}")
    assert state.read_text() == remembered
    # Without the state the rollback still shows: a newer archived checkpoint exists.
    code, report = audit(published, objects, tmp_path / "fresh-state.json")
    assert code == 1
    assert "newer" in failures_at(report, f"checkpoints/{ENTRIES}")[0]["problem"]


def test_the_state_file_advances_only_on_success(
    published: PublishedLog, objects: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"size": 0, "root": hashlib.sha256(b"").hexdigest()}) + "\n")
    before = state.read_text()
    flip_byte(objects / PARTIAL_TILE, 0)
    assert audit(published, objects, state)[0] == 1
    assert state.read_text() == before
    writable(objects / PARTIAL_TILE).write_bytes(
        (published.data_dir / "objects" / PARTIAL_TILE).read_bytes()
    )
    code, report = audit(published, objects, state)
    assert code == 0, report["failures"]
    assert json.loads(state.read_text())["size"] == ENTRIES


# --- objects the store holds but cannot read ------------------------------------------------


def symlink_in_place(path: Path) -> None:
    """Put a symbolic link where the object was, to its bytes moved beside it."""
    target = path.with_name(path.name + "-moved")
    path.rename(target)
    path.symlink_to(target)


def permissions_deny(tmp_path: Path) -> bool:
    """Whether a file of mode 000 cannot be read here (it can as root)."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    probe.chmod(0)
    try:
        probe.open("rb").close()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o600)
    return False


def test_unreadable_objects_are_named_and_the_rest_is_audited(
    published: PublishedLog, objects: Path, tmp_path: Path
) -> None:
    events = [json.loads(e) for e in decode_bundle((objects / FULL_BUNDLE).read_bytes())]
    ingested = [e["subject"]["sha256"] for e in events if e["type"] == "ingested"]
    original = f"originals/sha256/{ingested[0][:2]}/{ingested[0]}"
    for key in (FULL_TILE, PARTIAL_BUNDLE, original):
        symlink_in_place(objects / key)
    unreadable = {FULL_TILE.removeprefix("log/"), PARTIAL_BUNDLE.removeprefix("log/"), original}
    denied = permissions_deny(tmp_path)
    if denied:
        (objects / "log/checkpoints/0").chmod(0)
        unreadable.add("checkpoints/0")

    result = custody_cli(
        "audit", "--json", "--vkey", published.vkey, "--state", str(tmp_path / "s"), str(objects)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    named = {f["where"]: f for f in report["failures"] if f["problem"] == "unreadable in the store"}
    assert set(named) == unreadable
    assert named[original]["expected"] == "a regular file"
    assert "symbolic link" in named[original]["found"]
    if denied:
        assert "Permission denied" in named["checkpoints/0"]["found"]
    # Everything else was audited: every entry, tile and archive; the originals that the
    # readable bundle names; every timestamp over a readable archive.
    assert (report["entries"], report["tiles"]) == (ENTRIES, 3)
    assert report["checkpoints"] == len(archived_sizes(objects))
    assert report["originals"] == len(ingested)
    assert report["timestamps"]["valid"] == report["checkpoints"] - denied
    # The text report names each key too.
    text = custody_cli(
        "audit", "--vkey", published.vkey, "--state", str(tmp_path / "s"), str(objects)
    )
    assert text.returncode == 1, text.stdout + text.stderr
    for key in unreadable:
        assert f"FAIL {key}: unreadable in the store (expected " in text.stdout


# --- the database is not trusted ---------------------------------------------------------


@pytest.fixture
def edited_copy(published: PublishedLog, tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """A copy of the whole data directory whose database row for entry 5 was edited."""
    data_dir = tmp_path / "data"
    shutil.copytree(published.data_dir, data_dir)
    with closing(sqlite3.connect(data_dir / "custody.db")) as db, db:
        (entry,) = db.execute('SELECT entry FROM log_events WHERE "index" = 5').fetchone()
        forged = bytes(entry).replace(b'"type":"ingested"', b'"type":"annotated"')
        assert forged != bytes(entry)
        db.execute('UPDATE log_events SET entry = ? WHERE "index" = 5', (forged,))
    return data_dir, bytes(entry), forged


def test_an_entry_edited_in_the_database_is_caught_by_check_index_not_the_audit(
    published: PublishedLog, edited_copy: tuple[Path, bytes, bytes], tmp_path: Path
) -> None:
    data_dir, entry, forged = edited_copy
    # The audit reads only the store, which still holds what was signed.
    code, report = audit(published, data_dir / "objects", tmp_path / "state.json")
    assert code == 0, report["failures"]
    env = {**published.env, "CUSTODY_DATA_DIR": str(data_dir)}
    checked = custody_cli("admin", "check-index", env=env)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    differences = [line for line in checked.stdout.splitlines() if line.startswith("DIFF ")]
    assert differences == ["DIFF entry 5: the database's bytes differ from the log's"]
    # The API serves entries from the store too, after a restart as before.
    with running_service(env, data_dir, token=published.token) as service:
        with service.client() as client:
            served = client.get("/v1/log/entries/5")
        assert served.status_code == 200, served.text
        assert served.content == entry
        assert served.content != forged


def test_check_index_passes_on_the_untouched_database(published: PublishedLog) -> None:
    checked = custody_cli("admin", "check-index", env=published.env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Compared {ENTRIES} entries: 0 difference(s)." in checked.stdout


# --- usage errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vkey", "source", "mentions"),
    [
        ("notakey", "objects", "--vkey"),
        ("a+b+c", "objects", "--vkey"),
        ("/nonexistent/vkey-file", "objects", "--vkey"),
        (None, "missing-dir", "is not a directory"),
        (None, "ftp://example.org/log", "unsupported source"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    published: PublishedLog, tmp_path: Path, vkey: str | None, source: str, mentions: str
) -> None:
    (tmp_path / "objects").mkdir()
    where = source if "://" in source else str(tmp_path / source)
    result = custody_cli(
        "audit", "--vkey", vkey or published.vkey, "--state", str(tmp_path / "s"), where
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert mentions in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_corrupt_state_file_is_a_usage_error(published: PublishedLog, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    result = custody_cli(
        "audit", "--vkey", published.vkey, "--state", str(state), str(published.data_dir)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--state" in result.stderr
    assert "not an audit state file" in result.stderr
    assert state.read_text() == "{not json"


def test_a_directory_that_is_not_a_store_fails_naming_the_checkpoint(
    published: PublishedLog, tmp_path: Path
) -> None:
    code, report = audit(published, tmp_path, tmp_path / "state.json")
    assert code == 1
    assert failures_at(report, "checkpoint")[0]["problem"] == "missing"


@pytest.mark.skipif(not GPS_PHOTO.exists(), reason="../shared/corpus is absent")
def test_a_changed_sharing_copy_and_a_missing_metadata_sidecar_are_named(
    tmp_path: Path,
) -> None:
    """Fixity covers everything the log names: the photo's sealed metadata (its GPS position)
    and the sharing copy made from it, not only the original."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_service(base_env(data_dir), data_dir) as service, service.client() as client:
        case = new_case(client)
        ingest = client.put(f"/v1/cases/{case}/evidence", content=GPS_PHOTO.read_bytes())
        assert ingest.status_code == 201, ingest.text
        sidecar = ingest.json()["metadata"]["sha256"]
        made = client.post(f"/v1/evidence/{ingest.json()['sha256']}/copies", json={})
        assert made.status_code == 201, made.text
        copy = made.json()["sha256"]
        vkey = client.get("/v1/log/vkey").text.strip()
        wait_for_size(service, parse_vkey(vkey), made.json()["index"] + 1)
    log = PublishedLog(data_dir, {}, "", vkey, [])
    objects = data_dir / "objects"
    code, report = audit(log, objects, tmp_path / "clean.json")
    assert code == 0, report["failures"]
    assert (report["originals"], report["sidecars"], report["copies"]) == (1, 1, 1)

    flip_byte(objects / f"copies/sha256/{copy[:2]}/{copy}", 200)
    (objects / f"metadata/sha256/{sidecar[:2]}/{sidecar}").unlink()
    code, report = audit(log, objects, tmp_path / "tampered.json")
    assert code == 1
    assert failures_at(report, f"sharing copy {copy}")[0]["problem"] == (
        "fixity: stored bytes differ"
    )
    assert failures_at(report, f"metadata sidecar {sidecar}")[0]["problem"] == (
        "missing from the object store"
    )
