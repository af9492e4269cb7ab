"""Size limits and clients that go away mid-upload, over real sockets."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.staging import BATCH_BYTES
from tests.e2e.servers import Service, running_service
from tests.e2e.test_ingest import assert_problem, event_count, new_case

LIMIT = 2 * BATCH_BYTES  # more than one batch: uploads near the limit are staged on disk


@pytest.fixture
def small_limit_service(deployment: dict[str, str]) -> Iterator[Service]:
    env = {**deployment, "CUSTODY_MAX_UPLOAD_BYTES": str(LIMIT)}
    data_dir = Path(env["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    with running_service(env, data_dir) as svc:
        yield svc


def test_over_the_limit_is_413(small_limit_service: Service) -> None:
    service = small_limit_service
    with service.client() as client:
        case = new_case(client)
        declared = assert_problem(
            client.put(f"/v1/cases/{case}/evidence", content=os.urandom(LIMIT + 1)), 413
        )
        assert declared["limit"] == LIMIT

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            for _ in range(3):
                yield os.urandom(LIMIT // 2 + 1)

        assert_problem(client.put(f"/v1/cases/{case}/evidence", content=chunked()), 413)
        exact = client.put(f"/v1/cases/{case}/evidence", content=os.urandom(LIMIT))
        assert exact.status_code == 201, exact.text
    assert list((service.data_dir / "staging").iterdir()) == []


def test_client_disconnect_mid_upload_leaves_nothing(service: Service) -> None:
    data = os.urandom(4 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    with service.client() as client:
        case = new_case(client)
        before = event_count(client, case)
        host, port = service.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            head = (
                f"PUT /v1/cases/{case}/evidence HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {service.token}\r\nContent-Length: {len(data)}\r\n\r\n"
            )
            sock.sendall(head.encode() + data[: len(data) // 2])
            time.sleep(0.5)  # let the server stage the first half
        deadline = time.monotonic() + 10
        staging = service.data_dir / "staging"
        while time.monotonic() < deadline and staging.exists() and list(staging.iterdir()):
            time.sleep(0.1)
        assert not staging.exists() or list(staging.iterdir()) == []
        assert_problem(client.get(f"/v1/evidence/{sha}"), 404)
        assert event_count(client, case) == before + 1
    objects = service.data_dir / "objects"
    if objects.exists():
        assert not [p for p in objects.rglob("*") if p.name == sha]
    assert isinstance(httpx.get(f"{service.base_url}/healthz").json(), dict)
