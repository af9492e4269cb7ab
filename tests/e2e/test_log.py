"""The verifiable log over HTTP: receipts, proofs, raw tiles, and the auditor's commands."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from custody.checkpoint import open_checkpoint
from custody.merkle import leaf_hash, verify_consistency, verify_inclusion
from custody.note import parse_vkey
from tests.e2e.servers import Service, create_user, custody_cli, running_service
from tests.e2e.test_ingest import new_case


def ingest(client: httpx.Client, case: str, data: bytes) -> dict[str, object]:
    response = client.put(f"/v1/cases/{case}/evidence", content=data)
    assert response.status_code == 201, response.text
    return dict(response.json())


def audit_source(service: Service) -> tuple[str, dict[str, str]]:
    """The SOURCE argument and environment that reach this deployment's object store."""
    env = dict(os.environ)
    if service.env.get("CUSTODY_STORAGE_BACKEND") == "s3":
        env["AWS_ACCESS_KEY_ID"] = service.env["CUSTODY_S3_ACCESS_KEY_ID"]
        env["AWS_SECRET_ACCESS_KEY"] = service.env["CUSTODY_S3_SECRET_ACCESS_KEY"]
        return f"s3://{service.env['CUSTODY_S3_BUCKET']}", env
    return str(service.data_dir / "objects"), env


def audit_location(service: Service) -> tuple[list[str], dict[str, str]]:
    """`custody audit` arguments naming this deployment's store (SOURCE last), and env."""
    source, env = audit_source(service)
    extra = (
        ["--endpoint-url", service.env["CUSTODY_S3_ENDPOINT_URL"]]
        if source.startswith("s3://")
        else []
    )
    return [*extra, source], env


def test_receipt_proofs_and_audit(service: Service, tmp_path: Path) -> None:
    with service.client() as client:
        case = new_case(client)
        files = [os.urandom(1000 + i) for i in range(5)]
        results = [ingest(client, case, data) for data in files]
        vkey = client.get("/v1/log/vkey").text.strip()
        verifier = parse_vkey(vkey)

        # Every ingest came back with a receipt that verifies offline, for its own file only.
        (tmp_path / "vkey").write_text(vkey + "\n")
        for data, result in zip(files, results, strict=True):
            receipt = tmp_path / f"r{result['index']}.tlog-proof"
            receipt.write_text(str(result["receipt"]))
            evidence = tmp_path / f"f{result['index']}"
            evidence.write_bytes(data)
            ok = custody_cli(
                "verify-receipt", str(receipt), str(evidence), "--vkey", str(tmp_path / "vkey")
            )
            assert ok.returncode == 0, ok.stderr
            assert json.loads(ok.stdout)["index"] == result["index"]
            evidence.write_bytes(data + b"!")
            bad = custody_cli("verify-receipt", str(receipt), str(evidence), "--vkey", vkey)
            assert bad.returncode == 1
            assert "sha256" in bad.stderr.lower() or "subject" in bad.stderr.lower()

        checkpoint = open_checkpoint(client.get("/v1/log/checkpoint").content, verifier)
        size = checkpoint.size
        assert size >= len(files)
        last = int(str(results[-1]["index"]))
        entry = client.get(f"/v1/log/entries/{last}").content
        assert json.loads(entry)["subject"]["sha256"] == results[-1]["sha256"]
        inclusion = client.get(
            "/v1/log/proofs/inclusion", params={"index": last, "size": size}
        ).json()
        verify_inclusion(
            index=last,
            size=size,
            leaf_hash=leaf_hash(entry),
            proof=[base64.b64decode(h) for h in inclusion["proof"]],
            root=checkpoint.root,
        )
        first_size = int(str(results[0]["index"])) + 1
        old = (
            open_checkpoint(client.get(f"/v1/log/checkpoints/{first_size}").content, verifier)
            if first_size in client.get("/v1/log/checkpoints").json()["sizes"]
            else None
        )
        if old is not None:
            consistency = client.get(
                "/v1/log/proofs/consistency", params={"old": old.size, "new": size}
            ).json()
            verify_consistency(
                old_size=old.size,
                new_size=size,
                old_root=old.root,
                new_root=checkpoint.root,
                proof=[base64.b64decode(h) for h in consistency["proof"]],
            )
        receipt = client.get(f"/v1/log/entries/{last}/receipt")
        assert receipt.status_code == 200
        assert receipt.text.startswith("c2sp.org/tlog-proof@v1\n")

        # The raw tlog-tiles paths serve the stored bytes, without a token.
        raw = httpx.get(f"{service.base_url}/log/checkpoint")
        assert raw.status_code == 200
        assert open_checkpoint(raw.content, verifier).size >= size
        # Tiles hold every entry: auditors' material unless the operator makes them public.
        tile = f"{service.base_url}/log/tile/0/000.p/{size}"
        assert httpx.get(tile).status_code == 401
        assert httpx.get(tile, headers=service.auth).status_code in (200, 404)
        assert httpx.get(f"{service.base_url}/log/../custody.db").status_code == 404
        assert httpx.get(f"{service.base_url}/log/tile/0/0").status_code == 404

        assert_problem_status(client.get("/v1/log/entries/999999"), 404)
        assert_problem_status(client.get("/v1/log/entries/abc"), 404)
        assert_problem_status(
            client.get("/v1/log/proofs/inclusion", params={"index": 0, "size": 10**9}), 400
        )

    location, env = audit_location(service)
    state = tmp_path / "audit-state.json"
    audited = custody_cli(
        "audit", "--vkey", vkey, "--state", str(state), "--json", *location, env=env
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
    report = json.loads(audited.stdout)
    assert report["ok"] is True
    assert report["originals"] == len(files)
    assert json.loads(state.read_text())["size"] == report["size"]
    over_http = custody_cli(
        "audit",
        "--vkey",
        vkey,
        "--state",
        str(tmp_path / "s2"),
        "--token",
        service.token,
        service.base_url,
    )
    assert over_http.returncode == 0, over_http.stdout + over_http.stderr
    assert "OK." in over_http.stdout
    # An auditor reads the log but no evidence: over HTTP the originals are not shown to it,
    # which the report says, rather than calling every original missing.
    auditor = create_user(service.env, name="Auditor", role="auditor")
    as_auditor = custody_cli(
        "audit", "--vkey", vkey, "--state", str(tmp_path / "s3"), "--json", "--token", auditor,
        service.base_url,
    )  # fmt: skip
    assert as_auditor.returncode == 0, as_auditor.stdout + as_auditor.stderr
    seen = json.loads(as_auditor.stdout)
    assert seen["failures"] == []
    assert seen["not_visible"] == {"original": len(files)}
    assert seen["unchecked"] == ["metadata sidecar"]


def assert_problem_status(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_without_integration_the_answer_is_202_with_a_receipt_url(
    deployment: dict[str, str],
) -> None:
    data_dir = Path(deployment["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **deployment,
        "CUSTODY_INTEGRATOR_ENABLED": "false",
        "CUSTODY_RECEIPT_WAIT_SECONDS": "0.3",
    }
    with running_service(env, data_dir) as service, service.client() as client:
        case = new_case(client)
        response = client.put(f"/v1/cases/{case}/evidence", content=os.urandom(50))
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["receipt"] is None
        assert body["receipt_url"] == f"/v1/log/entries/{body['index']}/receipt"
        assert client.get(body["receipt_url"]).status_code == 404
        token = service.token
    # The same data directory with the integrator on: the receipt appears.
    with running_service(deployment, data_dir, token=token) as service, service.client() as client:
        for _ in range(100):
            got = client.get(body["receipt_url"])
            if got.status_code == 200:
                break
            time.sleep(0.1)
        assert got.status_code == 200, got.text


@pytest.mark.parametrize("bad", ["", "notakey", "a+b+c"])
def test_verify_receipt_usage_errors(tmp_path: Path, bad: str) -> None:
    receipt = tmp_path / "r"
    receipt.write_text("c2sp.org/tlog-proof@v1\n")
    result = custody_cli("verify-receipt", str(receipt), "--vkey", bad)
    assert result.returncode in (1, 2)
    assert result.stderr.strip()
