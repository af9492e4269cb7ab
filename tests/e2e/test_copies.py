"""Metadata on ingest and sharing copies over HTTP, checked with ExifTool."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import Service
from tests.e2e.test_ingest import assert_problem, event_count, new_case

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
GPS_PHOTO = CORPUS / "exif-samples" / "jpg" / "gps" / "DSCN0029.jpg"
CORRUPT = CORPUS / "exif-samples" / "jpg" / "corrupted.jpg"

pytestmark = pytest.mark.skipif(not GPS_PHOTO.exists(), reason="../shared/corpus is absent")


def exiftool(path: Path) -> dict[str, object]:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed (make test-tools installs it)")
    out = subprocess.run(
        ["exiftool", "-a", "-G1", "-s", "-j", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout)[0])


def test_gps_photo_is_warned_sealed_and_shared_clean(service: Service, tmp_path: Path) -> None:
    data = GPS_PHOTO.read_bytes()
    original = exiftool(GPS_PHOTO)
    assert any("GPS" in key for key in original)
    with service.client() as client:
        case = new_case(client)
        ingest = client.put(f"/v1/cases/{case}/evidence?filename=site.jpg", content=data)
        assert ingest.status_code == 201, ingest.text
        body = ingest.json()
        assert body["metadata"]["sensitive"]["gps"] is True
        assert any("GPS" in name for name in body["metadata"]["sensitive"]["fields"])
        sha = body["sha256"]

        sealed = client.get(f"/v1/evidence/{sha}/metadata").json()
        assert sealed["sha256"] == body["metadata"]["sha256"]
        assert any("GPS" in name for name in sealed["fields"])
        # The log names the sidecar by hash; no value read from the file goes into it.
        entry = json.loads(client.get(f"/v1/log/entries/{body['index']}").content)
        assert entry["metadata"] == {"sha256": sealed["sha256"]}
        # The random identifiers (of the event, case and actor) may spell anything.
        rest = json.dumps({k: v for k, v in entry.items() if k not in ("id", "case", "actor")})
        assert "GPS" not in rest
        assert "NIKON" not in rest.upper()

        made = client.post(f"/v1/evidence/{sha}/copies", json={"profile": "share"})
        assert made.status_code == 201, made.text
        copy = made.json()
        assert copy["original"] == sha
        assert copy["removed"]
        content = client.get(f"/v1/copies/{copy['sha256']}/content").content
        assert hashlib.sha256(content).hexdigest() == copy["sha256"]
        assert content[:2] == b"\xff\xd8"
        copy_path = tmp_path / "copy.jpg"
        copy_path.write_bytes(content)
        tags = exiftool(copy_path)
        leaked = [
            k for k in tags if any(w in k for w in ("GPS", "Serial", "Make", "Model", "Thumbnail"))
        ]
        assert leaked == []

        event = json.loads(client.get(f"/v1/log/entries/{copy['index']}").content)
        assert event["type"] == "derived"
        assert event["subject"]["sha256"] == copy["sha256"]
        assert event["derived_from"]["original"] == sha
        assert event["derived_from"]["content"]["sha256"] == copy["content"]["sha256"]
        assert client.get(f"/v1/copies/{copy['sha256']}").json()["original"] == sha


IPHONE_PHOTO = CORPUS / "exif-samples" / "heic" / "IMG_5195.HEIC"


def test_an_iphone_photo_is_shared_as_a_clean_png_of_its_pixels(
    service: Service, tmp_path: Path
) -> None:
    """HEIC, with GPS: the copy is a PNG rendition, served and logged as image/png."""
    data = IPHONE_PHOTO.read_bytes()
    assert any("GPS" in key for key in exiftool(IPHONE_PHOTO))
    with service.client() as client:
        case = new_case(client)
        ingest = client.put(f"/v1/cases/{case}/evidence?filename=IMG_5195.HEIC", content=data)
        assert ingest.status_code == 201, ingest.text
        body = ingest.json()
        assert body["media_type"] == "image/heic"
        assert body["metadata"]["sensitive"]["gps"] is True
        sha = body["sha256"]

        made = client.post(f"/v1/evidence/{sha}/copies", json={"profile": "share"})
        assert made.status_code == 201, made.text
        copy = made.json()
        assert copy["media_type"] == "image/png"
        assert copy["content"]["kind"] == "decoded-pixels"
        assert "HEIF Exif" in copy["removed"]
        content = client.get(f"/v1/copies/{copy['sha256']}/content").content
        assert content[:8] == b"\x89PNG\r\n\x1a\n"
        assert hashlib.sha256(content).hexdigest() == copy["sha256"]
        path = tmp_path / "copy.png"
        path.write_bytes(content)
        tags = exiftool(path)
        assert tags["File:FileType"] == "PNG"
        # The ICC profile is kept for the colours; its header names the profile's vendor
        # and an (empty) device model of the display it describes, as in every such photo.
        camera = [k for k in tags if not k.startswith("ICC")]
        assert [k for k in camera if any(w in k for w in ("GPS", "Serial", "Make", "Model"))] == []
        assert "ICC_Profile:ProfileDescription" in tags
        event = json.loads(client.get(f"/v1/log/entries/{copy['index']}").content)
        assert event["subject"]["media_type"] == "image/png"
        assert event["derived_from"]["tool"] == "heif-png/1"


def test_unsupported_and_unsafe_copies_are_refused(service: Service) -> None:
    with service.client() as client:
        case = new_case(client)
        text = client.put(f"/v1/cases/{case}/evidence", content=b"plain notes from the visit\n")
        refused = client.post(f"/v1/evidence/{text.json()['sha256']}/copies", json={})
        body = assert_problem(refused, 415)
        assert "image/jpeg" in body["supported"]

        if CORRUPT.exists():
            corrupt = client.put(f"/v1/cases/{case}/evidence", content=CORRUPT.read_bytes())
            assert corrupt.status_code in (201, 202), corrupt.text
            before = event_count(client, case)
            unsafe = client.post(f"/v1/evidence/{corrupt.json()['sha256']}/copies", json={})
            assert_problem(unsafe, 422)
            assert event_count(client, case) == before + 1  # nothing was logged for it

        assert_problem(client.post(f"/v1/evidence/{'0' * 64}/copies", json={}), 404)
        assert_problem(client.get(f"/v1/copies/{'0' * 64}/content"), 404)
        assert_problem(client.get(f"/v1/evidence/{'0' * 64}/metadata"), 404)


def test_copies_need_a_token(service: Service) -> None:
    response = httpx.post(f"{service.base_url}/v1/evidence/{'0' * 64}/copies", json={})
    assert_problem(response, 401)
