"""End-to-end fixtures: the real service on loopback, on both deployments."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import Service, running_service, throwaway_database


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env["CUSTODY_DATA_DIR"] = str(data_dir)
    # Tests ingest one file at a time: publish at once rather than gathering a batch.
    env["CUSTODY_LOG_BATCH_DELAY_MS"] = "0"
    env["CUSTODY_LOG_POLL_MS"] = "20"
    return env


@pytest.fixture(
    params=[
        "sqlite-local",
        pytest.param("postgres-s3", marks=[pytest.mark.postgres, pytest.mark.s3]),
    ]
)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of one deployment: the embedded default, or PostgreSQL + SeaweedFS."""
    data_dir = tmp_path / "data"
    env = base_env(data_dir)
    if request.param == "sqlite-local":
        yield env
        return
    s3: Any = request.getfixturevalue("s3_server")
    with throwaway_database() as url:
        env.update(s3_env(s3, url))
        yield env


def s3_env(s3: Any, database_url: str) -> dict[str, str]:
    return {
        "CUSTODY_DATABASE_URL": database_url,
        "CUSTODY_STORAGE_BACKEND": "s3",
        "CUSTODY_S3_ENDPOINT_URL": s3.endpoint,
        "CUSTODY_S3_ACCESS_KEY_ID": s3.access_key,
        "CUSTODY_S3_SECRET_ACCESS_KEY": s3.secret_key,
        "CUSTODY_S3_BUCKET": f"e2e-{secrets.token_hex(6)}",
        "CUSTODY_S3_CREATE_BUCKET": "true",
        "CUSTODY_S3_PART_SIZE": str(5 * 1024 * 1024),
        "CUSTODY_RETENTION_SECONDS": "3600",
    }


@pytest.fixture
def service(deployment: dict[str, str]) -> Iterator[Service]:
    data_dir = Path(deployment["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    with running_service(deployment, data_dir) as svc:
        yield svc
