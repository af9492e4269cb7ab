"""Trusted time over HTTP: RFC 3161 tokens on every checkpoint, checked by the real openssl."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from custody.tsp import generate_tsa
from tests.e2e.servers import Service, custody_cli, running_service
from tests.e2e.test_ingest import new_case
from tests.e2e.test_log import audit_location

OPENSSL = shutil.which("openssl") or "openssl"
QUERY = {"Content-Type": "application/timestamp-query"}


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60, check=False)


def ts_verify(
    data: Path, token: Path, root: Path, tsa: Path, *, token_in: bool = False
) -> subprocess.CompletedProcess[str]:
    """`openssl ts -verify` of a reply (or, with token_in, a bare token) over `data`."""
    kind = ["-token_in"] if token_in else []
    return openssl(
        "ts", "-verify", "-data", str(data), *kind, "-in", str(token),
        "-CAfile", str(root), "-untrusted", str(tsa),
    )  # fmt: skip


def save_chain(base_url: str, directory: Path) -> tuple[Path, Path]:
    """GET /v1/tsa/certs without a token; split it into the root and the TSA certificate."""
    response = httpx.get(f"{base_url}/v1/tsa/certs", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/pem-certificate-chain")
    chain = x509.load_pem_x509_certificates(response.content)
    assert len(chain) >= 2
    root, tsa = directory / "root.pem", directory / "tsa.pem"
    root.write_bytes(chain[-1].public_bytes(Encoding.PEM))
    tsa.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain[:-1]))
    return root, tsa


def test_every_receipt_carries_tokens_that_openssl_verifies(
    service: Service, tmp_path: Path
) -> None:
    root, tsa = save_chain(service.base_url, tmp_path)
    with service.client() as client:
        case = new_case(client)
        data = os.urandom(2000)
        response = client.put(f"/v1/cases/{case}/evidence", content=data)
        assert response.status_code == 201, response.text
        ingested = response.json()
        # The answer lists a TSA as pending if its token took longer than the receipt wait
        # (on a busy machine it may); the receipt endpoint then gives it once stored.
        assert set(ingested["timestamps_pending"]) | {t["tsa"] for t in ingested["timestamps"]} == {
            "builtin"
        }
        out = stamped_receipt(client, ingested["index"])
        assert out["timestamps_pending"] == []
        assert [t["tsa"] for t in out["timestamps"]] == ["builtin"]
        assert out["trusted_time"] is not None
        out["sha256"] = ingested["sha256"]

        receipt = out
        size = receipt["checkpoint_size"]
        assert receipt["receipt"].endswith(client.get(f"/v1/log/checkpoints/{size}").text), (
            "the receipt's checkpoint is the archived one the tokens are over"
        )
        checkpoint = tmp_path / "checkpoint"
        checkpoint.write_bytes(client.get(f"/v1/log/checkpoints/{size}").content)

        stamps = client.get(f"/v1/log/checkpoints/{size}/timestamps").json()
        assert [s["tsa"] for s in stamps] == ["builtin"]
        token = tmp_path / "token.der"
        token.write_bytes(base64.b64decode(stamps[0]["token"]))
        chain = tmp_path / "chain.pem"
        chain.write_text(stamps[0]["chain_pem"])
        assert x509.load_pem_x509_certificates(chain.read_bytes())[
            -1
        ] == x509.load_pem_x509_certificate(root.read_bytes())

        # The token alone, as the JSON gives it.
        verified = ts_verify(checkpoint, token, root, tsa, token_in=True)
        assert verified.returncode == 0, verified.stderr
        assert "Verification: OK" in verified.stdout
        # The stored TimeStampResp, as a tlog-tiles client fetches it (no token needed).
        raw = httpx.get(f"{service.base_url}/log/{stamps[0]['object']}", timeout=30)
        assert raw.status_code == 200
        assert raw.headers["content-type"] == "application/timestamp-reply"
        reply = tmp_path / "reply.tsr"
        reply.write_bytes(raw.content)
        verified = ts_verify(checkpoint, reply, root, tsa)
        assert verified.returncode == 0, verified.stderr
        # Other bytes than the checkpoint's do not verify against this token.
        checkpoint.write_bytes(checkpoint.read_bytes() + b"\n")
        assert ts_verify(checkpoint, token, root, tsa, token_in=True).returncode != 0

        # The API shows each event's trusted time.
        events = client.get(f"/v1/evidence/{out['sha256']}").json()["events"]
        assert events[0]["trusted_time"] is not None

        vkey = tmp_path / "vkey"
        vkey.write_text(client.get("/v1/log/vkey").text)

    # verify-receipt: token valid and TSA trusted are separate verdicts.
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps(out))
    evidence = tmp_path / "evidence"
    evidence.write_bytes(data)

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return custody_cli(
            "verify-receipt", str(receipt_file), str(evidence), "--vkey", str(vkey), *extra
        )

    trusted = verify("--tsa-ca", str(root))
    assert trusted.returncode == 0, trusted.stderr
    result = json.loads(trusted.stdout)
    assert result["timestamps"][0]["token_valid"] is True
    assert result["timestamps"][0]["tsa_trusted"] is True
    assert result["trusted_time"] == result["timestamps"][0]["time"]
    assert "TSA trusted" in trusted.stderr
    untrusted = verify()
    assert untrusted.returncode == 0, untrusted.stderr
    result = json.loads(untrusted.stdout)
    assert result["timestamps"][0]["token_valid"] is True
    assert result["timestamps"][0]["tsa_trusted"] is False
    assert result["trusted_time"] is None
    assert "NOT trusted" in untrusted.stderr
    # A token over other bytes is invalid, and says so.
    forged = json.loads(receipt_file.read_text())
    other = client_token_over_other_checkpoint(service, out["index"])
    forged["timestamps"][0]["token"] = other
    receipt_file.write_text(json.dumps(forged))
    invalid = verify("--tsa-ca", str(root))
    assert invalid.returncode == 1
    assert "INVALID" in invalid.stderr
    assert "imprint" in invalid.stderr.lower()

    # The auditor checks every token over every checkpoint.
    location, env = audit_location(service)
    audit = custody_cli(
        "audit",
        *location,
        "--vkey",
        str(vkey),
        "--tsa-ca",
        str(root),
        "--json",
        "--state",
        str(tmp_path / "state.json"),
        env=env,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(audit.stdout)
    assert report["timestamps"]["valid"] >= 2
    assert report["timestamps"]["untrusted"] == 0
    # Another root: every token is valid but untrusted, and with anchors given that fails.
    other_root = tmp_path / "other-root.pem"
    other_root.write_bytes(
        generate_tsa("Someone else", now=datetime.now(UTC)).chain[-1].public_bytes(Encoding.PEM)
    )
    audit = custody_cli(
        "audit",
        *location,
        "--vkey",
        str(vkey),
        "--tsa-ca",
        str(other_root),
        "--state",
        str(tmp_path / "state2.json"),
        env=env,
    )
    assert audit.returncode == 1
    assert "not trusted" in audit.stdout
    # Over HTTP, with the auditor's token (tiles are not public by default).
    audit = custody_cli(
        "audit", service.base_url, "--vkey", str(vkey), "--tsa-ca", str(root), "--json",
        "--no-originals", "--state", str(tmp_path / "http.json"), "--token", service.token,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["timestamps"]["valid"] >= 2
    anonymous = custody_cli(
        "audit", service.base_url, "--vkey", str(vkey), "--no-originals",
        "--state", str(tmp_path / "anonymous.json"),
    )  # fmt: skip
    assert anonymous.returncode == 1
    assert "--token" in anonymous.stderr


def stamped_receipt(client: httpx.Client, index: int) -> dict[str, Any]:
    """The JSON receipt of entry `index`, once no timestamp over its checkpoint is pending."""
    deadline = time.monotonic() + 30
    while True:
        receipt = client.get(
            f"/v1/log/entries/{index}/receipt", headers={"Accept": "application/json"}
        ).json()
        if not receipt["timestamps_pending"]:
            return dict(receipt)
        assert time.monotonic() < deadline, f"timestamps still pending: {receipt}"
        time.sleep(0.2)


def client_token_over_other_checkpoint(service: Service, index: int) -> str:
    """A real token from this log, but over an older checkpoint than the receipt's."""
    with service.client() as client:
        sizes = client.get("/v1/log/checkpoints").json()["sizes"]
        older = [s for s in sizes if s <= index]
        stamps = client.get(f"/v1/log/checkpoints/{older[-1]}/timestamps").json()
    return str(stamps[0]["token"])


def test_builtin_tsa_speaks_rfc3161_to_openssl(deployment: dict[str, str], tmp_path: Path) -> None:
    data_dir = Path(deployment["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    document = tmp_path / "document.pdf"
    document.write_bytes(os.urandom(5000))
    query = tmp_path / "q.tsq"
    made = openssl("ts", "-query", "-data", str(document), "-sha256", "-cert", "-out", str(query))
    assert made.returncode == 0, made.stderr
    serials: list[int] = []
    for _ in range(2):  # a restart must not reuse serial numbers
        with running_service(deployment, data_dir) as service:
            root, tsa = save_chain(service.base_url, tmp_path)
            for _ in range(2):
                response = httpx.post(
                    f"{service.base_url}/tsa", content=query.read_bytes(), headers=QUERY, timeout=30
                )
                assert response.status_code == 200
                assert response.headers["content-type"] == "application/timestamp-reply"
                reply = tmp_path / "r.tsr"
                reply.write_bytes(response.content)
                verified = openssl(
                    "ts",
                    "-verify",
                    "-queryfile",
                    str(query),
                    "-in",
                    str(reply),
                    "-CAfile",
                    str(root),
                    "-untrusted",
                    str(tsa),
                )
                assert verified.returncode == 0, verified.stderr
                text = openssl("ts", "-reply", "-in", str(reply), "-text").stdout
                assert "Status: Granted." in text
                assert "Hash Algorithm: sha256" in text
                assert "Nonce: 0x" in text
                assert "TSA: DirName:" in text
                assert "Custody TSA" in text
                match = re.search(r"Serial number: 0x([0-9A-F]+)", text)
                assert match is not None, text
                serials.append(int(match.group(1), 16))

            # Not a timestamp query: a problem, not a reply.
            wrong = httpx.post(f"{service.base_url}/tsa", content=b"x", timeout=30)
            assert wrong.status_code == 415
            assert wrong.headers["content-type"] == "application/problem+json"
            # Garbage as a query: a well-formed rejection that openssl reads.
            garbage = httpx.post(
                f"{service.base_url}/tsa", content=b"\x30\x03\x02\x01", headers=QUERY, timeout=30
            )
            assert garbage.status_code == 200
            reply.write_bytes(garbage.content)
            text = openssl("ts", "-reply", "-in", str(reply), "-text").stdout
            assert "Status: Rejected." in text, text
    assert len(set(serials)) == len(serials)
    assert serials[2] > serials[1], "serials after a restart come from a new epoch"


@pytest.mark.parametrize("policy", ["1.2.3.4.5"])
def test_policy_is_configurable_and_other_policies_are_refused(
    deployment: dict[str, str], tmp_path: Path, policy: str
) -> None:
    env = {**deployment, "CUSTODY_TSA_POLICY_OID": policy}
    data_dir = Path(env["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    document = tmp_path / "d"
    document.write_bytes(b"evidence")
    with running_service(env, data_dir) as service:
        for asked, granted in ((None, True), (policy, True), ("1.2.3.9", False)):
            query = tmp_path / "q.tsq"
            args = ["ts", "-query", "-data", str(document), "-sha256", "-out", str(query)]
            if asked:
                args += ["-tspolicy", asked]
            assert openssl(*args).returncode == 0
            response = httpx.post(
                f"{service.base_url}/tsa", content=query.read_bytes(), headers=QUERY, timeout=30
            )
            reply = tmp_path / "r.tsr"
            reply.write_bytes(response.content)
            text = openssl("ts", "-reply", "-in", str(reply), "-text").stdout
            if granted:
                assert "Status: Granted." in text
                assert f"Policy OID: {policy}" in text
            else:
                assert "Status: Rejected." in text
                assert "policy is not supported" in text
