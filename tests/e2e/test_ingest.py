"""Ingest and read-back over HTTP against a real uvicorn, on both deployments."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import httpx

from tests.e2e.servers import Service, running_service

JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + os.urandom(4000)
    + b"\xff\xd9"
)


def repr_digest(data: bytes, algorithm: str = "sha256") -> str:
    name = {"sha256": "sha-256", "sha512": "sha-512"}[algorithm]
    return f"{name}=:{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}:"


def new_case(client: httpx.Client, title: str = "Detention site visit") -> str:
    response = client.post("/v1/cases", json={"title": title})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    return dict(body)


def event_count(client: httpx.Client, case_id: str) -> int:
    """The next index the log will hand out, learnt by ingesting a probe file."""
    probe = os.urandom(64)
    response = client.put(f"/v1/cases/{case_id}/evidence", content=probe)
    assert response.status_code == 201, response.text
    return int(response.json()["index"])


def test_health_needs_no_token(service: Service) -> None:
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok"}


# One server per deployment checks every variant: starting one per variant costs seconds.
AUTHORIZATIONS = [
    None,
    "Bearer nope",
    "Basic dXNlcjpwYXNz",
    "bearer cst_forged0000000000000000000000000000000000",
]


def test_v1_needs_a_valid_token(deployment: dict[str, str]) -> None:
    # Twelve failed attempts from one address: more than the default rate limit allows
    # (tests/e2e/test_access_matrix.py checks the 429), so this server allows more.
    env = {**deployment, "CUSTODY_AUTH_FAILURES_PER_MINUTE": "100"}
    data_dir = Path(env["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    with running_service(env, data_dir) as service:
        _expect_401_for_every_bad_authorization(service)


def _expect_401_for_every_bad_authorization(service: Service) -> None:
    for authorization in AUTHORIZATIONS:
        headers = {"Authorization": authorization} if authorization else {}
        for method, path in [
            ("POST", "/v1/cases"),
            ("GET", f"/v1/evidence/{'0' * 64}"),
            ("PUT", "/v1/cases/x/evidence"),
            ("GET", "/v1/cases/x"),
        ]:
            response = httpx.request(
                method, service.base_url + path, headers=headers, json={"title": "t"}
            )
            body = assert_problem(response, 401)
            assert "Bearer" in response.headers["www-authenticate"]
            assert body["title"] == "Unauthorized"


def test_ingest_read_back_and_second_collection(service: Service) -> None:
    with service.client() as client:
        case_a, case_b = new_case(client), new_case(client, "Second team")
        response = client.put(
            f"/v1/cases/{case_a}/evidence",
            content=JPEG,
            headers={
                "Content-Type": "text/plain",
                "Repr-Digest": repr_digest(JPEG),
                "Content-Disposition": 'attachment; filename="cell 4.jpg"',
            },
        )
        assert response.status_code == 201, response.text
        first = response.json()
        sha = hashlib.sha256(JPEG).hexdigest()
        assert first["sha256"] == sha
        assert first["size"] == len(JPEG)
        assert first["media_type"] == "image/jpeg"  # from the bytes, not the header
        assert first["declared_media_type"] == "text/plain"
        assert first["case_id"] == case_a
        assert first["stored"] is True
        assert isinstance(first["index"], int)
        assert first["received_at"].endswith("Z")

        again = client.put(f"/v1/cases/{case_b}/evidence?filename=copy.jpg", content=JPEG)
        assert again.status_code == 201, again.text
        assert again.json()["stored"] is False
        assert again.json()["index"] == first["index"] + 1

        record = client.get(f"/v1/evidence/{sha}").json()
        assert [i["filename"] for i in record["ingests"]] == ["cell 4.jpg", "copy.jpg"]
        assert [e["index"] for e in record["events"]] == [first["index"], first["index"] + 1]
        entry = record["events"][0]["entry"]
        assert entry["type"] == "ingested"
        assert entry["subject"] == {"sha256": sha, "size": len(JPEG), "media_type": "image/jpeg"}
        assert entry["case"] == case_a
        # Auditors read every entry: no filename, title or name in it.
        assert "cell 4" not in str(record["events"])
        assert "Detention" not in str(record["events"])

        content = client.get(f"/v1/evidence/{sha}/content")
        assert content.status_code == 200
        assert content.content == JPEG
        assert content.headers["repr-digest"] == repr_digest(JPEG)
        assert content.headers["content-disposition"].startswith("attachment")


def test_large_upload_streams_round_trip(service: Service) -> None:
    chunk = os.urandom(1024 * 1024)
    total = 48
    digest = hashlib.sha256()
    for _ in range(total):
        digest.update(chunk)

    def body():  # type: ignore[no-untyped-def]
        for _ in range(total):
            yield chunk

    with service.client() as client:
        case = new_case(client)
        response = client.put(f"/v1/cases/{case}/evidence", content=body())
        assert response.status_code == 201, response.text
        assert response.json()["sha256"] == digest.hexdigest()
        assert response.json()["size"] == total * len(chunk)
        readback = hashlib.sha256()
        with client.stream("GET", f"/v1/evidence/{digest.hexdigest()}/content") as stream:
            for part in stream.iter_bytes():
                readback.update(part)
        assert readback.hexdigest() == digest.hexdigest()


def test_wrong_digest_stores_and_logs_nothing(service: Service) -> None:
    data = os.urandom(5000)
    with service.client() as client:
        case = new_case(client)
        before = event_count(client, case)
        declared = repr_digest(b"something else")
        for header in ("Repr-Digest", "Content-Digest"):
            response = client.put(
                f"/v1/cases/{case}/evidence", content=data, headers={header: declared}
            )
            body = assert_problem(response, 422)
            assert body["declared"] == hashlib.sha256(b"something else").hexdigest()
            assert body["computed"] == hashlib.sha256(data).hexdigest()
        sha512 = client.put(
            f"/v1/cases/{case}/evidence",
            content=data,
            headers={"Repr-Digest": repr_digest(b"x", "sha512")},
        )
        assert_problem(sha512, 422)
        assert_problem(client.get(f"/v1/evidence/{hashlib.sha256(data).hexdigest()}"), 404)
        assert event_count(client, case) == before + 1
        ok = client.put(
            f"/v1/cases/{case}/evidence",
            content=data,
            headers={"Repr-Digest": f"{repr_digest(data)}, {repr_digest(data, 'sha512')}"},
        )
        assert ok.status_code == 201, ok.text
        assert ok.json()["digests"]["sha512"] == hashlib.sha512(data).hexdigest()
    _assert_nothing_staged(service)


MALFORMED_DIGESTS = ["sha-256=abc", "sha-256=:not base64!:", "sha-256=:AAAA:", ",", "sha-256"]


def test_malformed_digest_header(service: Service) -> None:
    with service.client() as client:
        case = new_case(client)
        for value in MALFORMED_DIGESTS:
            response = client.put(
                f"/v1/cases/{case}/evidence", content=b"data", headers={"Repr-Digest": value}
            )
            assert_problem(response, 400)


def test_empty_body(service: Service) -> None:
    with service.client() as client:
        case = new_case(client)
        body = assert_problem(client.put(f"/v1/cases/{case}/evidence", content=b""), 400)
        assert "no bytes" in str(body["detail"])
    _assert_nothing_staged(service)


UNKNOWN_CASES = [
    "c_doesnotexist",
    "1",
    "%2E%2E",
    "x" * 300,
    "%F0%9F%94%92",
    "00000000-0000-0000-0000-000000000000",
]


def test_unknown_case_is_404_whatever_its_shape(service: Service) -> None:
    with service.client() as client:
        for case_id in UNKNOWN_CASES:
            assert_problem(client.put(f"/v1/cases/{case_id}/evidence", content=b"x"), 404)
            assert_problem(
                client.post(f"/v1/cases/{case_id}/evidence", files={"file": ("a", b"x")}), 404
            )
            assert_problem(client.get(f"/v1/cases/{case_id}"), 404)


def test_unknown_evidence_is_404(service: Service) -> None:
    with service.client() as client:
        for sha in ["0" * 64, "xyz", "A" * 64, "0" * 65]:
            assert_problem(client.get(f"/v1/evidence/{sha}"), 404)
            assert_problem(client.get(f"/v1/evidence/{sha}/content"), 404)


def test_path_like_filenames_are_only_labels(service: Service, tmp_path: Path) -> None:
    with service.client() as client:
        case = new_case(client)
        data = os.urandom(100)
        response = client.put(f"/v1/cases/{case}/evidence?filename=../../etc/passwd", content=data)
        assert response.status_code == 201, response.text
        multipart = client.post(
            f"/v1/cases/{case}/evidence",
            files={"file": ("..\\..\\windows\\evil.exe", os.urandom(10))},
        )
        assert multipart.status_code == 201, multipart.text
        record = client.get(f"/v1/evidence/{response.json()['sha256']}").json()
        assert record["ingests"][0]["filename"] == "passwd"
        record = client.get(f"/v1/evidence/{multipart.json()['sha256']}").json()
        assert record["ingests"][0]["filename"] == "evil.exe"
    assert not (service.data_dir.parent / "etc").exists()
    assert not list(service.data_dir.rglob("passwd"))


def test_multipart_upload(service: Service) -> None:
    with service.client() as client:
        case = new_case(client)
        response = client.post(
            f"/v1/cases/{case}/evidence",
            files={"file": ("photo.jpg", JPEG, "image/png")},
            data={"digest": repr_digest(JPEG)},
        )
        assert response.status_code == 201, response.text
        assert response.json()["media_type"] == "image/jpeg"
        assert response.json()["declared_media_type"] == "image/png"
        record = client.get(f"/v1/evidence/{hashlib.sha256(JPEG).hexdigest()}").json()
        assert record["ingests"][-1]["filename"] == "photo.jpg"

        other = os.urandom(300)
        mismatch = client.post(
            f"/v1/cases/{case}/evidence",
            files={"file": ("a.bin", other)},
            data={"digest": repr_digest(b"not it")},
        )
        assert_problem(mismatch, 422)
        assert_problem(client.get(f"/v1/evidence/{hashlib.sha256(other).hexdigest()}"), 404)
        no_file = client.post(f"/v1/cases/{case}/evidence", files={"note": (None, "x")})
        assert_problem(no_file, 400)
        not_form = client.post(
            f"/v1/cases/{case}/evidence", content=b"raw", headers={"Content-Type": "text/plain"}
        )
        assert_problem(not_form, 400)
    _assert_nothing_staged(service)


def _assert_nothing_staged(service: Service) -> None:
    staging = service.data_dir / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
