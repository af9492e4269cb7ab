"""Two API processes sharing one database append concurrently: indices stay gap-free."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import base_env, s3_env
from tests.e2e.servers import Service, create_user, libpq_url, running_service, throwaway_database

FILES = 200


@pytest.fixture
def two_services(tmp_path: Path, s3_server: Any) -> Iterator[tuple[list[Service], str]]:
    with throwaway_database() as url, ExitStack() as stack:
        env = base_env(tmp_path / "shared") | s3_env(s3_server, url)
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
    two_services: tuple[list[Service], str],
) -> None:
    services, url = two_services
    with services[0].client() as client:
        case = client.post("/v1/cases", json={"title": "Concurrent"}).json()["id"]
    # Every tenth file repeats an earlier one: duplicates race on the evidence row too.
    payloads = [os.urandom(2048) for _ in range(FILES)]
    for i in range(10, FILES, 10):
        payloads[i] = payloads[i - 5]

    def upload(i: int) -> int:
        service = services[i % 2]
        with httpx.Client(base_url=service.base_url, headers=service.auth, timeout=120) as c:
            response = c.put(f"/v1/cases/{case}/evidence", content=payloads[i])
            assert response.status_code == 201, response.text
            return int(response.json()["index"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        indices = list(pool.map(upload, range(FILES)))
    assert sorted(indices) == list(range(FILES))
    with psycopg.connect(libpq_url(url)) as conn:
        stored = [row[0] for row in conn.execute('SELECT "index" FROM log_events ORDER BY "index"')]
        distinct = conn.execute("SELECT count(*) FROM evidence").fetchone()
    assert stored == list(range(FILES))
    assert distinct == (len(set(payloads)),)
