"""Exhibit bundles over HTTP: exported, logged, downloaded, and verified by tools of others.

bagit-python validates the bag (an independent BagIt implementation), pypdf reads the
certificate, the commands of VERIFY.md run as written, and `custody verify-bundle` checks the
bag with no server, no data directory and no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from contextlib import closing
from pathlib import Path
from typing import Any

import bagit
import httpx
import pytest
from pypdf import PdfReader

from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, running_service
from tests.e2e.test_copies import GPS_PHOTO, IPHONE_PHOTO
from tests.e2e.test_ingest import assert_problem, new_case

BIN = Path(sys.executable).parent
PURPOSE = "Submission to the Regional Court, case 17/2026, for the defence and the judge"


def export(client: httpx.Client, case: str, items: list[str], purpose: str = PURPOSE) -> str:
    response = client.post(f"/v1/cases/{case}/exports", json={"items": items, "purpose": purpose})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/exports/{response.json()['id']}/status"
    return str(response.json()["id"])


def wait_ready(client: httpx.Client, export_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(f"/v1/exports/{export_id}/status")
        assert status.status_code == 200, status.text
        body: dict[str, Any] = status.json()
        if body["status"] != "building":
            assert body["status"] == "ready", body
            return body
        time.sleep(0.1)
    raise AssertionError(f"export {export_id} still building after 120 s")


def download(client: httpx.Client, export_id: str, into: Path) -> Path:
    response = client.get(f"/v1/exports/{export_id}", params={"purpose": "file with the court"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    name = f"custody-export-{export_id}.zip"
    assert f'filename="{name}"' in response.headers["content-disposition"]
    path = into / name
    path.write_bytes(response.content)
    return path


def verify_bundle(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [str(BIN / "custody"), "verify-bundle", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=cwd,
    )


def anchors(client: httpx.Client, into: Path) -> tuple[str, Path]:
    """The log's vkey and the built-in TSA's root, as an auditor fetches them beforehand."""
    vkey = client.get("/v1/log/vkey").text.strip()
    chain = client.get("/v1/tsa/certs").text
    root = into / "tsa-root.pem"
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", chain, re.S)
    root.write_text(blocks[-1])
    return vkey, root


def ingest(client: httpx.Client, case: str, data: bytes, name: str) -> dict[str, Any]:
    response = client.put(f"/v1/cases/{case}/evidence", params={"filename": name}, content=data)
    assert response.status_code in (201, 202), response.text
    return dict(response.json())


@pytest.mark.skipif(not GPS_PHOTO.exists(), reason="../shared/corpus is absent")
def test_a_bundle_is_logged_downloadable_and_verifies_with_independent_tools(
    service: Service, tmp_path: Path
) -> None:
    with service.client() as client:
        case = new_case(client, "Detention site 4")
        photo = ingest(client, case, GPS_PHOTO.read_bytes(), "site/photo 1.jpg")
        note = ingest(client, case, os.urandom(5000), "Заявление.bin")
        copy = client.post(f"/v1/evidence/{photo['sha256']}/copies", json={"profile": "share"})
        assert copy.status_code == 201, copy.text
        items = [photo["sha256"], copy.json()["sha256"], note["sha256"]]
        export_id = export(client, case, items)
        status = wait_ready(client, export_id)
        bag = download(client, export_id, tmp_path)
        vkey, root = anchors(client, tmp_path)
        history = client.get(f"/v1/evidence/{photo['sha256']}/custody").json()
        listed = client.get(f"/v1/cases/{case}/exports").json()

    assert hashlib.sha256(bag.read_bytes()).hexdigest() == status["bag_sha256"]
    assert [e["id"] for e in listed] == [export_id]
    exported = [e for e in history if e["type"] == "exported"]
    assert exported, history
    assert exported[0]["entry"]["export"]["id"] == export_id
    assert exported[0]["entry"]["export"]["manifest_sha256"] == status["manifest_sha256"]
    reads = [e for e in history if e["access"] == "export"]
    assert not reads  # the bag is its own subject: its download is not the photo's event

    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(bag) as archive:
        archive.extractall(unzipped)
    bag_dir = unzipped / f"custody-export-{export_id}"
    bagit.Bag(str(bag_dir)).validate()  # bagit-python raises BagValidationError otherwise
    manifest = (bag_dir / "manifest-sha256.txt").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == status["manifest_sha256"]
    for sha in items:
        assert sha.encode() in manifest

    text = "".join(page.extract_text() for page in PdfReader(bag_dir / "certificate.pdf").pages)
    compact = re.sub(r"\s+", "", text)
    for sha in items:
        assert sha in compact, f"{sha} is not in the certificate"

    checked = verify_bundle(str(bag), "--vkey", vkey, "--tsa-ca", str(root), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] is True
    assert report["trust"]["log_key"] == "supplied"
    assert [e["sha256"] for e in report["exhibits"]] == items


@pytest.mark.skipif(not GPS_PHOTO.exists(), reason="../shared/corpus is absent")
def test_verify_md_runs_as_written_and_a_copy_alone_verifies_offline(tmp_path: Path) -> None:
    """The embedded default; then the server stops and its data directory is deleted: the
    bag and the verifier alone, with the network cut off, must suffice."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = base_env(data_dir)
    with running_service(env, data_dir) as service, service.client() as client:
        case = new_case(client, "Copy alone")
        photo = ingest(client, case, GPS_PHOTO.read_bytes(), "witness.jpg")
        made = client.post(f"/v1/evidence/{photo['sha256']}/copies", json={"profile": "share"})
        copy_sha = made.json()["sha256"]
        export_id = export(client, case, [copy_sha], "For the opposing party")
        wait_ready(client, export_id)
        away = tmp_path / "courtroom"
        away.mkdir()
        bag = download(client, export_id, away)
    shutil.rmtree(data_dir)

    script = _verify_md_script(bag)
    clean = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(away), "LANG": "C.UTF-8"}
    ran = _offline(["sh", "-e", "-c", script], env=clean, cwd=away)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "OK" in ran.stdout

    checked = _offline(
        [str(BIN / "custody"), "verify-bundle", bag.name, "--json"], env=clean, cwd=away
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["trust"]["log_key"] == "bag only"
    (exhibit,) = report["exhibits"]
    assert exhibit["sha256"] == copy_sha
    assert exhibit["kind"] == "sharing-copy"

    original = away / "disclosed-original.jpg"
    original.write_bytes(GPS_PHOTO.read_bytes())
    proven = _offline(
        [str(BIN / "custody"), "verify-bundle", bag.name, "--original", str(original), "--json"],
        env=clean,
        cwd=away,
    )
    assert proven.returncode == 0, proven.stdout + proven.stderr
    assert "content" in proven.stdout


def _verify_md_script(bag: Path) -> str:
    with zipfile.ZipFile(bag) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/VERIFY.md"))
        text = archive.read(name).decode("utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "VERIFY.md has one shell block to run as written"
    return str(blocks[0])


def _offline(args: list[str], *, env: dict[str, str], cwd: Path) -> Any:
    """Run with no network at all: a fresh network namespace has only a down loopback."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"], check=False).returncode:
        pytest.skip("unshare -n is unavailable (needs root or user namespaces)")
    return subprocess.run(
        [unshare, "-n", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=cwd,
    )


def test_exports_refuse_what_they_cannot_honour(service: Service, tmp_path: Path) -> None:
    with service.client() as client:
        case = new_case(client, "Refusals")
        other = new_case(client, "Another case")
        mine = ingest(client, case, os.urandom(300), "a.bin")
        theirs = ingest(client, other, os.urandom(300), "b.bin")
        url = f"/v1/cases/{case}/exports"
        empty = assert_problem(client.post(url, json={"items": [], "purpose": PURPOSE}), 422)
        assert "1 to" in str(empty["detail"])
        twice = [mine["sha256"], mine["sha256"]]
        repeated = assert_problem(client.post(url, json={"items": twice, "purpose": PURPOSE}), 422)
        assert repeated["repeated"] == [mine["sha256"]]
        unknown = [mine["sha256"], theirs["sha256"], "0" * 64]
        missing = assert_problem(client.post(url, json={"items": unknown, "purpose": PURPOSE}), 422)
        assert missing["missing"] == [theirs["sha256"], "0" * 64]
        silent = assert_problem(
            client.post(url, json={"items": [mine["sha256"]], "purpose": " "}), 422
        )
        assert "purpose" in str(silent["detail"]).lower()
        assert_problem(
            client.post(
                "/v1/cases/c_nothing/exports", json={"items": [mine["sha256"]], "purpose": PURPOSE}
            ),
            404,
        )
        assert_problem(client.get("/v1/exports/x_nothing/status"), 404)
        assert_problem(client.get("/v1/exports/x_nothing"), 404)
        # Nothing was logged for refused exports.
        history = client.get(f"/v1/evidence/{mine['sha256']}/custody").json()
        assert [e["type"] for e in history] == ["ingested"]
        # A bag being built is not downloadable yet; once built it is, and its read is logged.
        export_id = export(client, case, [mine["sha256"]])
        early = client.get(f"/v1/exports/{export_id}")
        if early.status_code == 409:
            body = assert_problem(early, 409)
            assert body["export_status"] == "building"
        wait_ready(client, export_id)
        bag = download(client, export_id, tmp_path)
        bag_sha = hashlib.sha256(bag.read_bytes()).hexdigest()
        for _ in range(100):
            entries = _entries_about(client, bag_sha)
            if entries:
                break
            time.sleep(0.05)
        assert entries, "the download was not logged"
        access = entries[0]["access"]
        assert set(access) == {"kind", "purpose_hmac_sha256"}
        assert access["kind"] == "export"
        # A keyed commitment: not the plain hash that anyone could compute from a guess.
        assert re.fullmatch("[0-9a-f]{64}", access["purpose_hmac_sha256"])
        assert access["purpose_hmac_sha256"] != hashlib.sha256(b"file with the court").hexdigest()


def _entries_about(client: httpx.Client, sha256: str) -> list[dict[str, Any]]:
    size = int(client.get("/v1/log/checkpoint").text.split("\n")[1])
    found = []
    for index in range(max(0, size - 20), size):
        entry = json.loads(client.get(f"/v1/log/entries/{index}").content)
        if entry.get("subject", {}).get("sha256") == sha256:
            found.append(entry)
    return found


def _rewrite(bag: Path, into: Path, change: Any) -> Path:
    """A copy of the zipped bag with `change(name, data) -> data | None` applied to every
    member (None drops it); `change("", b"")` may return extra members to add."""
    out = into / bag.name
    with zipfile.ZipFile(bag) as source, zipfile.ZipFile(out, "w") as target:
        root = source.namelist()[0].split("/")[0]
        for info in source.infolist():
            data = change(info.filename.removeprefix(root + "/"), source.read(info))
            if data is not None:
                target.writestr(info, data)
        for name, data in (change("", b"") or {}).items():
            target.writestr(f"{root}/{name}", data)
    return out


def test_a_real_bag_that_was_tampered_with_is_refused_by_name(
    service: Service, tmp_path: Path
) -> None:
    with service.client() as client:
        case = new_case(client, "Tamper")
        first = ingest(client, case, os.urandom(2000), "statement.bin")
        second = ingest(client, case, os.urandom(3000), "map.bin")
        export_id = export(client, case, [first["sha256"], second["sha256"]])
        wait_ready(client, export_id)
        bag = download(client, export_id, tmp_path)
        vkey = client.get("/v1/log/vkey").text.strip()
    assert verify_bundle(str(bag), "--vkey", vkey).returncode == 0

    def flip(name: str, data: bytes) -> Any:
        if name == "data/002-map.bin":
            return data[:100] + bytes([data[100] ^ 1]) + data[101:]
        return None if name == "" else data

    def add(name: str, data: bytes) -> Any:
        return {"data/003-planted.bin": b"planted"} if name == "" else data

    def drop(name: str, data: bytes) -> Any:
        return None if name in ("certificate.pdf", "") else data

    for change, named in (
        (flip, "data/002-map.bin"),
        (add, "data/003-planted.bin"),
        (drop, "certificate.pdf"),
    ):
        where = tmp_path / change.__name__
        where.mkdir()
        checked = verify_bundle(str(_rewrite(bag, where, change)), "--vkey", vkey)
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert named in checked.stdout, checked.stdout


def _interrupt(data_dir: Path, export_id: str, *, new_id: str | None = None) -> None:
    """Leave the stopped service's export as a build that died: `building`, silent since long
    ago, with nothing recorded of its outcome (with `new_id`: a copy of the request that died
    before any work)."""
    with closing(sqlite3.connect(data_dir / "custody.db")) as db, db:
        (updated,) = db.execute(
            "SELECT updated_at FROM exports WHERE id = ?", (export_id,)
        ).fetchone()
        silent_since = "2000" + str(updated)[4:]
        if new_id is not None:
            columns = "case_id, created_by, actor, purpose, purpose_key, items_json, created_at"
            db.execute(
                f"INSERT INTO exports (id, status, updated_at, {columns}) "
                f"SELECT ?, 'building', ?, {columns} FROM exports WHERE id = ?",
                (new_id, silent_since, export_id),
            )
            return
        db.execute(
            "UPDATE exports SET status = 'building', updated_at = ?, bag_sha256 = NULL, "
            "bag_size = NULL, storage_key = NULL, checkpoint_size = NULL WHERE id = ?",
            (silent_since, export_id),
        )


def test_an_interrupted_export_is_built_again_at_any_point_without_logging_it_twice(
    tmp_path: Path,
) -> None:
    """The three places a build can die: before any work, after its `exported` entries were
    appended (the bag not yet sealed), and after the bag was sealed (not yet marked ready).
    A restarted service resumes each; the log never holds an export's entries twice."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**base_env(data_dir), "CUSTODY_EXPORT_STALE_SECONDS": "1"}
    with running_service(env, data_dir) as service, service.client() as client:
        case = new_case(client, "Detention site 9")
        items = [ingest(client, case, os.urandom(3000), f"note {n}.bin")["sha256"] for n in (1, 2)]
        export_id = export(client, case, items)
        first = wait_ready(client, export_id)
        token = service.token
    bag = data_dir / "objects" / "exports" / f"{export_id}.zip"

    # 1. Died after logging: the bag is gone, the entries are in the log.
    _interrupt(data_dir, export_id)
    bag.unlink()
    with running_service(env, data_dir, token=token) as service, service.client() as client:
        rebuilt = wait_ready(client, export_id)
        fetched = download(client, export_id, tmp_path)
        vkey, root = anchors(client, tmp_path)
        logged = [e for e in _entries_about(client, items[0]) if e["type"] == "exported"]
    assert rebuilt["manifest_sha256"] == first["manifest_sha256"]
    assert [e["export"]["id"] for e in logged] == [export_id]  # not appended again
    result = verify_bundle(str(fetched), "--vkey", vkey, "--tsa-ca", str(root))
    assert result.returncode == 0, result.stdout + result.stderr

    # 2. Died after sealing: the bag is kept as sealed and only marked ready.
    _interrupt(data_dir, export_id)
    with running_service(env, data_dir, token=token) as service, service.client() as client:
        marked = wait_ready(client, export_id)
    assert (
        marked["bag_sha256"]
        == rebuilt["bag_sha256"]
        == hashlib.sha256(bag.read_bytes()).hexdigest()
    )
    assert marked["checkpoint_size"] == rebuilt["checkpoint_size"]

    # 3. Died before any work: built from the request alone.
    _interrupt(data_dir, export_id, new_id="x_resumed")
    with running_service(env, data_dir, token=token) as service, service.client() as client:
        fresh = wait_ready(client, "x_resumed")
        fetched = download(client, "x_resumed", tmp_path)
        logged = [e for e in _entries_about(client, items[1]) if e["type"] == "exported"]
    assert sorted(e["export"]["id"] for e in logged) == sorted([export_id, "x_resumed"])
    result = verify_bundle(str(fetched), "--vkey", vkey, "--tsa-ca", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert fresh["manifest_sha256"] == first["manifest_sha256"]  # the same exhibits
    assert fresh["bag_sha256"] != first["bag_sha256"]  # in a bag of its own


@pytest.mark.skipif(not GPS_PHOTO.exists(), reason="../shared/corpus is absent")
def test_a_copy_made_twice_in_a_case_exports_a_bag_that_verifies(
    service: Service, tmp_path: Path
) -> None:
    with service.client() as client:
        case = new_case(client, "Detention site 5")
        photo = ingest(client, case, GPS_PHOTO.read_bytes(), "photo.jpg")
        made = [
            client.post(f"/v1/evidence/{photo['sha256']}/copies", json={"profile": "share"})
            for _ in range(2)
        ]
        assert [m.status_code for m in made] == [201, 201], [m.text for m in made]
        copy = made[0].json()["sha256"]
        assert made[1].json()["sha256"] == copy  # the same stripper makes the same bytes
        export_id = export(client, case, [photo["sha256"], copy])
        wait_ready(client, export_id)  # under a checkpoint that covers both derived entries
        derived = [e for e in _entries_about(client, copy) if e["type"] == "derived"]
        assert len(derived) == 2, derived  # each request is its own custody event
        bag = download(client, export_id, tmp_path)
        vkey, root = anchors(client, tmp_path)

    checked = verify_bundle(str(bag), "--vkey", vkey, "--tsa-ca", str(root), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] is True, report["failures"]
    assert [e["sha256"] for e in report["exhibits"]] == [photo["sha256"], copy]


@pytest.mark.skipif(not IPHONE_PHOTO.exists(), reason="../shared/corpus is absent")
def test_the_png_rendition_of_an_iphone_photo_is_exported_and_proven_by_its_original(
    service: Service, tmp_path: Path
) -> None:
    """A HEIC original's sharing copy is a PNG: the bag names it .png, and the original,
    supplied to verify-bundle, proves the copy shows its pixels."""
    with service.client() as client:
        case = new_case(client, "Checkpoint photos")
        photo = ingest(client, case, IPHONE_PHOTO.read_bytes(), "IMG_5195.HEIC")
        made = client.post(f"/v1/evidence/{photo['sha256']}/copies", json={"profile": "share"})
        assert made.status_code == 201, made.text
        copy = made.json()["sha256"]
        export_id = export(client, case, [copy], "For the press office")
        wait_ready(client, export_id)
        bag = download(client, export_id, tmp_path)
        vkey, root = anchors(client, tmp_path)
    with zipfile.ZipFile(bag) as archive:
        payload = [n for n in archive.namelist() if "/data/" in n]
    assert len(payload) == 1
    assert payload[0].endswith(".png"), payload

    checked = verify_bundle(
        str(bag), "--vkey", vkey, "--tsa-ca", str(root), "--original", str(IPHONE_PHOTO),
        "--json",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    (proof,) = report["content_proofs"]
    assert proof["proven"] is True
    assert proof["content_kind"] == "decoded-pixels"
