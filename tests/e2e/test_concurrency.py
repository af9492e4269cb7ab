"""Two API processes sharing one database append concurrently: indices stay gap-free, and
the log they publish together is one log (same checkpoint, receipts verify, audit is clean)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from custody.checkpoint import open_checkpoint
from custody.note import Verifier, format_signer, format_vkey, generate_signer, parse_vkey
from custody.receipt import parse_receipt, verify_receipt
from tests.e2e.conftest import base_env, s3_env
from tests.e2e.servers import Service, create_user, libpq_url, running_service, throwaway_database
from tests.e2e.test_log import audit_source, custody_cli

FILES = 200
ORIGIN = "custody.e2e.concurrency"


@pytest.fixture
def two_services(tmp_path: Path, s3_server: Any) -> Iterator[tuple[list[Service], str]]:
    # Each process has its own data directory, so it would generate its own log key there:
    # the processes of one deployment must be given the same key (and origin) instead.
    signer = generate_signer(ORIGIN)
    with throwaway_database() as url, ExitStack() as stack:
        env = base_env(tmp_path / "shared") | s3_env(s3_server, url)
        env |= {"CUSTODY_LOG_ORIGIN": ORIGIN, "CUSTODY_LOG_PRIVATE_KEY": format_signer(signer)}
        token = create_user(env)
        services = []
        for name in ("a", "b"):
            data_dir = tmp_path / name
            data_dir.mkdir()
            process_env = {**env, "CUSTODY_DATA_DIR": str(data_dir)}
            services.append(
                stack.enter_context(running_service(process_env, data_dir, token=token))
            )
        yield services, url


@pytest.mark.postgres
@pytest.mark.s3
def test_two_processes_ingest_200_files_with_gap_free_indices(
    two_services: tuple[list[Service], str], tmp_path: Path
) -> None:
    services, url = two_services
    with services[0].client() as client:
        case = client.post("/v1/cases", json={"title": "Concurrent"}).json()["id"]
    # Creating the user's token and the case were logged first (administrative events).
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM log_events").fetchone()
    base = int(row[0]) if row else 0
    total = base + FILES
    # Every tenth file repeats an earlier one: duplicates race on the evidence row too.
    payloads = [os.urandom(2048) for _ in range(FILES)]
    for i in range(10, FILES, 10):
        payloads[i] = payloads[i - 5]

    def upload(i: int) -> dict[str, Any]:
        service = services[i % 2]
        with httpx.Client(base_url=service.base_url, headers=service.auth, timeout=120) as c:
            response = c.put(f"/v1/cases/{case}/evidence", content=payloads[i])
            assert response.status_code == 201, response.text
            return dict(response.json())

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(upload, range(FILES)))
    indices = [int(result["index"]) for result in results]
    assert sorted(indices) == list(range(base, total))
    with psycopg.connect(libpq_url(url)) as conn:
        stored = [row[0] for row in conn.execute('SELECT "index" FROM log_events ORDER BY "index"')]
        distinct = conn.execute("SELECT count(*) FROM evidence").fetchone()
    assert stored == list(range(total))
    assert distinct == (len(set(payloads)),)

    verifier = shared_verifier(services)
    checkpoint = same_checkpoint_everywhere(services, verifier, total)
    assert open_checkpoint(checkpoint, verifier).size == total
    for data, result in zip(payloads, results, strict=True):
        receipt = parse_receipt(str(result["receipt"]).encode())
        verified = verify_receipt(receipt, verifier, file_sha256=hashlib.sha256(data).hexdigest())
        assert verified.index == result["index"]
    assert_audit_clean(services[0], verifier, tmp_path, total)


def shared_verifier(services: list[Service]) -> Verifier:
    vkeys = set()
    for service in services:
        with service.client() as client:
            vkeys.add(client.get("/v1/log/vkey").text.strip())
    assert len(vkeys) == 1, f"the processes sign with different keys: {vkeys}"
    verifier = parse_vkey(vkeys.pop())
    assert verifier.name == ORIGIN
    return verifier


def same_checkpoint_everywhere(services: list[Service], verifier: Verifier, size: int) -> bytes:
    """Wait until the published checkpoint covers every file; both processes serve it."""
    deadline = time.monotonic() + 30
    with services[0].client() as first, services[1].client() as second:
        while True:
            signed = first.get("/v1/log/checkpoint").content
            if open_checkpoint(signed, verifier).size >= size:
                break
            assert time.monotonic() < deadline, "the log never covered every file"
            time.sleep(0.1)
        assert second.get("/v1/log/checkpoint").content == signed
    return signed


def assert_audit_clean(service: Service, verifier: Verifier, tmp_path: Path, size: int) -> None:
    source, env = audit_source(service)
    assert source.startswith("s3://")
    audited = custody_cli(
        "audit",
        "--vkey",
        format_vkey(verifier),
        "--state",
        str(tmp_path / "audit-state.json"),
        "--json",
        "--endpoint-url",
        service.env["CUSTODY_S3_ENDPOINT_URL"],
        source,
        env=env,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
    report = json.loads(audited.stdout)
    assert (report["ok"], report["size"], report["entries"]) == (True, size, size)


def test_serve_with_two_workers_gives_every_upload_a_receipt(tmp_path: Path) -> None:
    """`custody serve --workers 2` (embedded): one key, one integrator, gap-free indices."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = base_env(data_dir)
    payloads = [os.urandom(512) for _ in range(40)]
    with running_service(env, data_dir, workers=2) as service:
        with service.client() as client:
            case = client.post("/v1/cases", json={"title": "Workers"}).json()["id"]

        def upload(data: bytes) -> dict[str, Any]:
            with service.client() as c:
                response = c.put(f"/v1/cases/{case}/evidence", content=data)
                assert response.status_code == 201, response.text
                return dict(response.json())

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(upload, payloads))
        with service.client() as client:
            verifier = parse_vkey(client.get("/v1/log/vkey").text.strip())
    # After the user's token-created and the case's case-created and member-added events.
    indices = sorted(int(result["index"]) for result in results)
    assert indices == list(range(indices[0], indices[0] + len(payloads)))
    for data, result in zip(payloads, results, strict=True):
        receipt = parse_receipt(str(result["receipt"]).encode())
        verified = verify_receipt(receipt, verifier, file_sha256=hashlib.sha256(data).hexdigest())
        assert verified.index == result["index"]
