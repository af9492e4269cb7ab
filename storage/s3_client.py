"""boto3 at the S3 adapter's boundary: the client, the one error translation, response bodies."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import determine_content_length

from storage.base import ObjectExistsError, ObjectNotFoundError, StorageError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})  # HEAD responses carry no error body


class S3Error(StorageError):
    """The S3 service refused or failed a request for a reason the port has no name for."""

    def __init__(self, key: str, code: str, status: int, message: str) -> None:
        where = f" for {key!r}" if key else ""
        super().__init__(f"S3 error {code or 'unknown'} (HTTP {status}){where}: {message}")
        self.key = key
        self.code = code
        self.status = status


@contextlib.contextmanager
def s3_errors(key: str = "") -> Iterator[None]:
    """The one place where boto3/botocore exceptions become the port's errors.

    `key` names the object concerned; without one (bucket operations) a missing object or
    failed precondition cannot be meant, so every service error is an `S3Error`.
    """
    try:
        yield
    except ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if key and code in _NOT_FOUND:
            raise ObjectNotFoundError(key) from error
        # 412 answers a create-only write (If-None-Match: *) when the key is taken.
        if key and (code == "PreconditionFailed" or status == 412):
            raise ObjectExistsError(key) from error
        raise S3Error(key, code, status, str(details.get("Message", error))) from error
    except BotoCoreError as error:  # connection, timeout, credentials, truncated body
        where = f" for {key!r}" if key else ""
        raise StorageError(f"S3 request{where} failed: {error}") from error


MAX_POOL_CONNECTIONS = 64
# botocore sends every PutObject with "Expect: 100-continue" and then waits for the server's
# interim answer before the body: a round trip more per object. Below this size the body is
# sent at once, as the AWS SDK for Go does below 2 MiB: a refusal (a taken name, a bad
# signature) then costs at most these bytes sent for nothing.
CONTINUE_THRESHOLD = 2 * 1024**2


def create_client(
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    *,
    max_attempts: int = 5,
) -> S3Client:
    """An S3 client with path-style addressing, which every S3 server we target accepts.

    Credentials left None come from boto3's default chain (environment, profile, IAM role).
    """
    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": max_attempts, "mode": "standard"},
        # botocore keeps 10 connections; a service calls from up to 40 request threads
        # (AnyIO's limit) plus its own, and each call past the pool opens (and drops) one.
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    # A session of its own: boto3's default session is shared, mutable, global state.
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )
    # Last among the handlers of the service's event, after botocore's, which adds the header.
    client.meta.events.register_last("before-call.s3", _continue_for_large_bodies_only)
    return client


def _continue_for_large_bodies_only(params: dict[str, Any], **_: Any) -> None:
    """Drop "Expect: 100-continue" from a request whose body is below CONTINUE_THRESHOLD.

    Any operation: botocore adds it to every PUT or POST with a body (PutObject, UploadPart)."""
    headers = params.get("headers", {})
    if headers.get("Expect") != "100-continue":
        return
    size = determine_content_length(params.get("body"))
    if size is not None and size < CONTINUE_THRESHOLD:
        del headers["Expect"]


class BodyReader(io.RawIOBase):
    """A botocore streaming body as a raw binary stream whose errors are the port's."""

    def __init__(self, body: StreamingBody, key: str) -> None:
        self._body = body
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        with s3_errors(self._key):
            data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
