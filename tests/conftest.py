"""Shared fixtures: the real servers the tests talk to."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from storage.s3 import create_client
from tests.servers import (
    ENV_S3_ACCESS_KEY,
    ENV_S3_ENDPOINT,
    ENV_S3_SECRET_KEY,
    S3_REGION,
    S3Server,
    seaweedfs,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# ---------------------------------------------------------------------------------------
# S3 (SeaweedFS): the server named by CUSTODY_TEST_S3_* (see `python -m tests.servers`),
# else one started for this pytest session. Buckets are throwaway: locked objects outlive a test.
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    endpoint = os.environ.get(ENV_S3_ENDPOINT)
    if endpoint:
        yield S3Server(endpoint, os.environ[ENV_S3_ACCESS_KEY], os.environ[ENV_S3_SECRET_KEY], None)
        return
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_client(s3_server: S3Server) -> S3Client:
    return create_client(s3_server.endpoint, S3_REGION, s3_server.access_key, s3_server.secret_key)


@pytest.fixture
def s3_bucket_factory(s3_client: S3Client) -> Callable[..., str]:
    """Make a fresh bucket (Object Lock enabled unless `object_lock=False`); return its name."""

    def create(*, object_lock: bool = True) -> str:
        name = f"test-{uuid.uuid4().hex[:24]}"
        s3_client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        return name

    return create


# ---------------------------------------------------------------------------------------
# End of the S3 block.
# ---------------------------------------------------------------------------------------
